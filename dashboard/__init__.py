"""The Streamlit side: one adapter that owns caches and backends; pages import it and draw."""
