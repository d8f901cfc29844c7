"""The labelled retrieval set: personas' memories, questions with the ids of the memories that answer them, and new
facts with the ids of the memories they contradict. ``python -m bench.retrieval_set`` writes
``bench/data/retrieval_set.json`` (committed; the same seed gives the same file).

Each persona has one life (home, job, family, pets, health, plans, tastes) told as memories the way the pipeline
stores them, some of it outdated by what replaced it, plus a diary of dated activities with people and places that
share names and words with the rest — the distractors a keyword ranker must get past. Questions are of six kinds:

* ``paraphrase`` — asked in other words than the memory ("Where is she based these days?" → "lives in Lisbon");
* ``name`` and ``place`` — about a person or a town the persona knows;
* ``number_date`` — years, months, distances, counts;
* ``title`` — a book, film or album by its title;
* ``outdated`` — answered by a memory that is no longer true ("Where did the user live before?").
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PATH = Path(__file__).resolve().parent / "data" / "retrieval_set.json"

FIRST_NAMES = ["Ana", "Kofi", "Yuki", "Liam", "Zara", "Mateo", "Ines", "Omar", "Priya", "Lars", "Chen", "Noor",
               "Tomasz", "Amara", "Jonas", "Leila", "Diego", "Hana", "Felix", "Sade", "Ravi", "Elif", "Bruno", "Maren",
               "Tariq", "Ingrid", "Kwame", "Lucia", "Sven", "Aiko", "Niamh", "Pablo", "Farah", "Emeka", "Greta",
               "Arjun", "Sofia", "Dmitri", "Wanjiru", "Hugo"]
CITIES = ["Lisbon", "Nairobi", "Osaka", "Porto", "Leeds", "Quito", "Tallinn", "Perth", "Montreal", "Cork", "Bergen",
          "Seville", "Hanoi", "Austin", "Kraków", "Accra", "Lyon", "Busan", "Valparaíso", "Ghent", "Utrecht",
          "Bologna", "Tbilisi", "Cusco", "Dunedin", "Marrakesh", "Riga", "Cebu", "Halifax", "Tartu"]
RELATIONS = ["sister", "brother", "daughter", "son", "cousin", "grandmother", "best friend", "colleague", "neighbour",
             "flatmate"]
JOBS = [("nurse", "hospital"), ("data engineer", "logistics start-up"), ("secondary school teacher", "school"),
        ("architect", "design studio"), ("chef", "seafood restaurant"), ("pharmacist", "pharmacy chain"),
        ("translator", "publishing house"), ("electrician", "construction firm"), ("accountant", "bank"),
        ("veterinarian", "animal clinic"), ("journalist", "local newspaper"), ("park ranger", "national park")]
PETS = [("dog", "a border collie"), ("cat", "a ginger cat"), ("parrot", "an African grey parrot"),
        ("rabbit", "a lop-eared rabbit"), ("tortoise", "a Greek tortoise")]
PET_NAMES = ["Biscuit", "Pepper", "Mochi", "Rufus", "Olive", "Pixel", "Juniper", "Waffles", "Comet", "Nutmeg"]
ALLERGIES = ["peanuts", "shellfish", "penicillin", "cat hair", "pollen", "latex", "sesame", "bee stings"]
CONDITIONS = [("asthma", "uses an inhaler before running"), ("type 1 diabetes", "checks blood sugar before meals"),
              ("migraines", "avoids bright screens at night"), ("a bad lower back", "does physiotherapy twice a week"),
              ("high blood pressure", "takes medication every morning"),
              ("insomnia", "stops drinking coffee after noon")]
INSTRUMENTS = ["cello", "ukulele", "drums", "piano", "violin", "bass guitar", "saxophone", "harmonica"]
SPORTS = ["tennis", "badminton", "football", "volleyball", "table tennis", "rugby", "water polo", "basketball"]
HOBBIES = [("pottery", "makes bowls and mugs on a wheel"), ("birdwatching", "keeps a list of birds seen"),
           ("rock climbing", "climbs at an indoor wall"), ("sailing", "crews on a small yacht"),
           ("baking sourdough", "keeps a starter in the fridge"), ("chess", "plays rated games online"),
           ("watercolour painting", "paints landscapes"), ("gardening", "grows tomatoes on the balcony"),
           ("knitting", "knits scarves for the family"), ("photography", "shoots on a film camera")]
LANGUAGES = ["Spanish", "Japanese", "Swahili", "German", "Portuguese", "Korean", "Arabic", "Italian", "Turkish"]
BOOKS = ["The Left Hand of Darkness", "Pachinko", "Middlemarch", "Things Fall Apart", "The Overstory",
         "Piranesi", "Beloved", "The Remains of the Day", "Kindred", "Stoner", "Circe", "The Name of the Rose"]
FILMS = ["Spirited Away", "Paris, Texas", "Moonlight", "Parasite", "Amélie", "Roma", "Arrival", "Whiplash",
         "In the Mood for Love", "Portrait of a Lady on Fire"]
ALBUMS = ["Kind of Blue", "Blue Train", "OK Computer", "Homogenic", "Rumours", "Songs in the Key of Life",
          "Buena Vista Social Club", "Random Access Memories"]
FOODS = ["ramen", "paella", "jollof rice", "pho", "tacos al pastor", "moussaka", "dim sum", "shakshuka",
         "pierogi", "ceviche"]
DISLIKES = ["coriander", "olives", "blue cheese", "mushrooms", "liquorice", "anchovies", "okra", "marzipan"]
DRINKS = ["green tea", "espresso", "oat latte", "yerba mate", "chai", "rooibos"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
ACTIVITIES = [
    "went hiking near {place} with {name}", "watched a football match in {place} with {name}",
    "cooked dinner for {name}", "helped {name} move flat in {place}", "visited a museum in {place} with {name}",
    "went to a jazz concert in {place} with {name}", "took a cooking class in {place}",
    "went kayaking with {name}", "ran a 10 km race in {place}", "spent a weekend in {place} with {name}",
    "played {sport} with {name}", "went to the cinema with {name}", "had a picnic in {place} with {name}",
    "went to a wedding in {place}", "celebrated {name}'s birthday", "went camping near {place} with {name}",
    "attended a pottery workshop in {place}", "volunteered at a food bank in {place}",
    "went swimming in the sea near {place}", "had a long phone call with {name}",
    "went to a farmers' market in {place} with {name}", "repaired a bicycle with {name}",
    "visited {name} in hospital", "went to a book launch in {place}", "painted a mural with {name}",
]
PARAPHRASE_HOME = ["Where is the user based these days?", "Which city does the user call home now?",
                   "Where does the user currently reside?"]
PARAPHRASE_JOB = ["What does the user do for a living?", "What is the user's occupation?",
                  "How does the user earn money?"]
PARAPHRASE_PET = ["Does the user have any animals at home?", "What kind of companion animal does the user keep?"]
PARAPHRASE_ALLERGY = ["What should the user never be given?", "What does the user react badly to?"]
PARAPHRASE_CONDITION = ["Does the user have a chronic illness?", "What long-term medical issue does the user have?"]
PARAPHRASE_INSTRUMENT = ["Which musical instrument does the user practise?", "What does the user play music on?"]
PARAPHRASE_DRINK = ["How does the user like to start the day?", "What is the user's usual morning beverage?"]
PARAPHRASE_FOOD = ["What is the user's favourite dish?", "What meal does the user enjoy the most?"]
PARAPHRASE_DISLIKE = ["Which ingredient does the user refuse to eat?", "What food does the user hate?"]
PARAPHRASE_LANGUAGE = ["Which foreign tongue is the user studying?", "What language is the user trying to pick up?"]
PARAPHRASE_HOBBY = ["What creative pastime does the user have?", "What does the user do in their free time?"]


@dataclass
class Persona:
    user_id: str
    rng: random.Random
    memories: list[dict[str, Any]] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)
    contradictions: list[dict[str, Any]] = field(default_factory=list)
    start: datetime = datetime(2022, 1, 1, tzinfo=UTC)

    def remember(self, content: str, type_: str, *, status: str = "active", days: int | None = None) -> str:
        mid = f"{self.user_id}-m{len(self.memories):03d}"
        when = self.start + timedelta(days=days if days is not None else self.rng.randrange(0, 1000))
        self.memories.append({"id": mid, "content": content, "type": type_, "status": status,
                              "created_at": when.isoformat()})
        return mid

    def ask(self, query: str, kind: str, relevant: list[str], *, include_outdated: bool = False) -> None:
        self.queries.append({"id": f"{self.user_id}-q{len(self.queries):03d}", "user_id": self.user_id,
                             "query": query, "kind": kind, "relevant": relevant,
                             "statuses": ["active", "outdated"] if include_outdated else ["active"]})

    def told(self, values: list[str], template: str, type_: str, paraphrases: list[str]) -> tuple[str, str]:
        """Remember one fact made of a value picked from ``values``, asked about in one of ``paraphrases``."""
        value = self.rng.choice(values)
        mid = self.remember(template.format(value), type_)
        self.ask(self.rng.choice(paraphrases), "paraphrase", [mid])
        return value, mid

    def contradict(self, new_fact: str, old: str) -> None:
        self.contradictions.append({"id": f"{self.user_id}-c{len(self.contradictions):02d}",
                                    "user_id": self.user_id, "fact": new_fact, "contradicts": [old]})


def build_persona(index: int, rng: random.Random) -> Persona:  # noqa: PLR0915 — one life story, told in order
    p = Persona(user_id=f"persona-{index:02d}", rng=rng)
    pick = rng.choice
    cities = rng.sample(CITIES, 8)
    old_home, home = cities[0], cities[1]
    people = rng.sample(FIRST_NAMES, 10)
    (old_job, old_employer), (job, employer) = rng.sample(JOBS, 2)
    move_year = rng.randrange(2019, 2025)

    # home and work, each with what it replaced
    was_home = p.remember(f"The user lives in {old_home}.", "personal", status="outdated", days=10)
    home_now = p.remember(f"The user moved to {home} in {MONTHS[rng.randrange(12)]} {move_year}.", "personal",
                          days=400)
    was_job = p.remember(f"The user works as a {old_job} at a {old_employer} in {old_home}.", "professional",
                         status="outdated", days=12)
    job_now = p.remember(f"The user works as a {job} at a {employer} in {home}.", "professional", days=420)
    p.ask(pick(PARAPHRASE_HOME), "paraphrase", [home_now])
    p.ask(pick(PARAPHRASE_JOB), "paraphrase", [job_now])
    p.ask("Where did the user live before moving?", "outdated", [was_home], include_outdated=True)
    p.ask(f"Did the user ever live in {old_home}?", "outdated", [was_home], include_outdated=True)
    p.ask("What was the user's previous job?", "outdated", [was_job], include_outdated=True)
    p.ask(f"When did the user move to {home}?", "number_date", [home_now])
    p.contradict(f"The user relocated to {cities[2]} for a new start.", home_now)
    p.contradict(f"The user quit and now works as a {pick([j for j, _ in JOBS if j not in (job, old_job)])}.",
                 job_now)

    # family and friends: the relation memory answers "who is X"; the diary mentions them too
    relations = rng.sample(RELATIONS, 5)
    relation_ids: dict[str, str] = {}
    for name, relation in zip(people[:5], relations, strict=True):
        city = pick(cities[1:6])
        mid = p.remember(f"The user has a {relation} called {name} who lives in {city}.", "personal")
        relation_ids[name] = mid
    for name in rng.sample(people[:5], 3):
        p.ask(f"Who is {name}?", "name", [relation_ids[name]])
    name, relation = people[0], relations[0]
    p.ask(f"What is the name of the user's {relation}?", "name", [relation_ids[name]])
    birthday_month = MONTHS[rng.randrange(12)]
    bday = p.remember(f"{people[1]}'s birthday is on {rng.randrange(1, 29)} {birthday_month}.", "personal")
    p.ask(f"When is {people[1]}'s birthday?", "name", [bday])
    born_year = rng.randrange(1965, 2002)
    born = p.remember(f"The user was born in {cities[6]} in {born_year}.", "personal", days=5)
    p.ask("Which year was the user born?", "number_date", [born])
    p.ask("Where does the user come from originally?", "paraphrase", [born])

    # pets
    species, description = pick(PETS)
    pet_name = pick(PET_NAMES)
    pet = p.remember(f"The user has {description} named {pet_name}.", "personal")
    p.ask(pick(PARAPHRASE_PET), "paraphrase", [pet])
    p.ask(f"Who is {pet_name}?", "name", [pet])
    p.contradict(f"The user's {species} {pet_name} passed away last winter.", pet)

    # health
    allergy = pick(ALLERGIES)
    allergic = p.remember(f"The user is allergic to {allergy}.", "health")
    condition, routine = pick(CONDITIONS)
    ill = p.remember(f"The user has {condition} and {routine}.", "health")
    p.ask(pick(PARAPHRASE_ALLERGY), "paraphrase", [allergic])
    p.ask(pick(PARAPHRASE_CONDITION), "paraphrase", [ill])
    p.ask(f"Is the user allergic to {allergy}?", "exact_words", [allergic])
    surgery_year = rng.randrange(2010, 2024)
    surgery = p.remember(f"The user had knee surgery in {surgery_year}.", "health")
    p.ask(f"What happened to the user in {surgery_year}?", "number_date", [surgery])
    p.ask("Has the user ever had an operation?", "paraphrase", [surgery])

    # tastes
    instrument = pick(INSTRUMENTS)
    plays = p.remember(f"The user has played the {instrument} for {rng.randrange(2, 25)} years.", "activity")
    p.ask(pick(PARAPHRASE_INSTRUMENT), "paraphrase", [plays])
    p.ask(f"How long has the user played the {instrument}?", "number_date", [plays])
    p.told(DRINKS, "The user always has {} at breakfast.", "preference", PARAPHRASE_DRINK)
    p.told(FOODS, "The user's favourite food is {}.", "preference", PARAPHRASE_FOOD)
    p.told(DISLIKES, "The user cannot stand {}.", "preference", PARAPHRASE_DISLIKE)
    diet_old = p.remember("The user eats meat every day and loves steak.", "preference", status="active")
    p.contradict("The user became vegetarian this year.", diet_old)
    book = pick(BOOKS)
    film = pick(FILMS)
    album = pick(ALBUMS)
    read = p.remember(f"The user loved reading {book} and recommends it to everyone.", "preference")
    watched = p.remember(f"The user's favourite film is {film}.", "preference")
    listens = p.remember(f"The user listens to the album {album} when working.", "preference")
    p.ask(f"What does the user think of {book}?", "title", [read])
    p.ask(f"Has the user seen {film}?", "title", [watched])
    p.ask(f"When does the user listen to {album}?", "title", [listens])
    p.ask("Which novel would the user recommend?", "paraphrase", [read])
    hobby, detail = pick(HOBBIES)
    hobby_id = p.remember(f"The user took up {hobby} and {detail}.", "activity")
    p.ask(pick(PARAPHRASE_HOBBY), "paraphrase", [hobby_id])
    p.told(LANGUAGES, "The user is learning {} with an app every evening.", "activity", PARAPHRASE_LANGUAGE)
    sport = pick(SPORTS)
    team = p.remember(f"The user plays {sport} in a club on Thursdays.", "activity")
    p.ask(f"Which day does the user play {sport}?", "number_date", [team])
    p.contradict(f"The user gave up {sport} after a shoulder injury.", team)
    km = rng.choice([5, 8, 10, 12, 15, 21])
    runs = p.remember(f"The user runs {km} km every Sunday morning.", "activity")
    p.ask("How far does the user run each week?", "number_date", [runs])

    # plans
    trip_city = cities[7]
    trip_month = MONTHS[rng.randrange(12)]
    trip = p.remember(f"The user plans to visit {trip_city} in {trip_month} {move_year + 2}.", "plan")
    p.ask(f"What are the user's travel plans for {move_year + 2}?", "number_date", [trip])
    p.ask(f"When is the user going to {trip_city}?", "place", [trip])
    saving = p.remember(f"The user is saving for a flat deposit of {rng.randrange(10, 60)} thousand euros.", "plan")
    p.ask("Is the user putting money aside for anything?", "paraphrase", [saving])
    marathon = p.remember(f"The user wants to run the {pick(cities[1:])} marathon in {move_year + 3}.", "plan")
    p.ask("Is the user training for a long-distance race?", "paraphrase", [marathon])

    # the diary: dated activities with the same people and places, the distractors
    diary_people = people + [n for n in FIRST_NAMES if n not in people][:20]  # relatives, friends, acquaintances
    diary_places = cities + [c for c in CITIES if c not in cities][:12]
    by_place: dict[str, list[str]] = {}
    by_person: dict[str, list[str]] = {}
    by_month: dict[tuple[str, int], list[str]] = {}
    target = rng.randrange(130, 160)
    seen: set[str] = set()
    while target:
        template = pick(ACTIVITIES)
        place, name = pick(diary_places), pick(diary_people)
        year, month = rng.randrange(2019, 2026), rng.randrange(12)
        body = template.format(place=place, name=name, sport=pick(SPORTS))
        text = f"In {MONTHS[month]} {year} the user {body}."
        if text in seen:
            continue
        seen.add(text)
        target -= 1
        mid = p.remember(text, "activity")
        if "{place}" in template:
            by_place.setdefault(place, []).append(mid)
        if "{name}" in template:
            by_person.setdefault(name, []).append(mid)
        by_month.setdefault((MONTHS[month], year), []).append(mid)
    rare_places = [c for c, ids in by_place.items() if len(ids) <= 3]
    for place in rng.sample(rare_places, min(3, len(rare_places))):
        p.ask(f"What did the user do in {place}?", "place", by_place[place])
    rare_people = [n for n in diary_people[5:] if 0 < len(by_person.get(n, [])) <= 3]
    for name in rng.sample(rare_people, min(2, len(rare_people))):
        p.ask(f"What has the user done together with {name}?", "name", by_person[name])
    single_months = [key for key, ids in by_month.items() if len(ids) == 1]
    for month, year in rng.sample(single_months, min(2, len(single_months))):
        p.ask(f"What did the user get up to in {month} {year}?", "number_date", by_month[(month, year)])
    return p


def build(personas: int = 12, seed: int = 14) -> dict[str, Any]:
    rng = random.Random(seed)
    built = [build_persona(i, rng) for i in range(personas)]
    return {
        "description": "TiMemory's labelled retrieval set (generated by bench/retrieval_set.py, seed "
                       f"{seed}): memories per persona, questions with the ids of the memories that answer them, "
                       "and new facts with the ids of the memories they contradict.",
        "memories": [m | {"user_id": p.user_id} for p in built for m in p.memories],
        "queries": [q for p in built for q in p.queries],
        "contradictions": [c for p in built for c in p.contradictions],
    }


def load() -> dict[str, Any]:
    return json.loads(PATH.read_text(encoding="utf-8"))


if __name__ == "__main__":
    data = build()
    PATH.parent.mkdir(parents=True, exist_ok=True)
    PATH.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    kinds: dict[str, int] = {}
    for q in data["queries"]:
        kinds[q["kind"]] = kinds.get(q["kind"], 0) + 1
    print(f"{len(data['memories'])} memories, {len(data['queries'])} queries {kinds}, "
          f"{len(data['contradictions'])} contradictions -> {PATH}")
