"""The labelled change set: life changes and look-alike non-changes, each with the memory it concerns, mixed with
distractor memories of the same user. ``python -m bench.changes_set`` writes ``bench/data/changes.json``
(committed; the same seed gives the same file).

Every pair was labelled by hand:

* a **change** (a move, a new job, a break-up, a new phone...) states something that makes the ``old`` memory no
  longer true, so consolidation should mark it outdated;
* a **non-change** is about the same thing as the ``old`` memory without contradicting it ("The user lives in
  Glasgow." → "The user painted the living room of the flat."), so the old memory must stay active.

Each pair carries the user's message, the fact a capable model extracts from it, and the subject key a capable
model gives both (``None`` where the fact has no single current value). The distractors are what a long-time user's
memory holds besides: family, friends, trips, tastes and plans that share the pairs' words (cities, jobs, trains,
phones) without being about the same thing.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

PATH = Path(__file__).resolve().parent / "data" / "changes.json"

# (old memory, its type, the user's message, the extracted fact, the fact's type, the subject key of both)
CHANGES: list[tuple[str, str, str, str, str, str | None]] = [
    ("The user lives in Paris with two cats.", "personal", "Big news: I moved to Berlin last month!",
     "The user moved to Berlin.", "personal", "home"),
    ("The user works as a nurse at a children's hospital.", "professional",
     "I quit nursing, I'm a software developer now.", "The user is now a software developer.", "professional",
     "job"),
    ("The user is single.", "personal", "Sam proposed last weekend and we're engaged!", "The user is engaged to Sam.",
     "personal", "relationship"),
    ("The user commutes to work by train.", "activity", "I cycle to work every day now, rain or shine.",
     "The user cycles to work every day.", "activity", "commute"),
    ("The user has an iPhone 12.", "personal", "I finally got a Pixel 9 yesterday.", "The user has a Google Pixel 9.",
     "personal", "phone"),
    ("The user loves a good steak.", "preference", "I went vegan in March, no more meat for me.",
     "The user has been vegan since March.", "health", "diet"),
    ("The user is married to Alex.", "personal", "Alex and I got divorced this spring.",
     "The user divorced Alex this spring.", "personal", "relationship"),
    ("The user rents a flat in Leeds.", "personal", "We bought a house in York and moved in!",
     "The user bought a house in York and lives there.", "personal", "home"),
    ("The user works at Siemens as an engineer.", "professional", "I joined Bosch in January.",
     "The user has worked at Bosch since January.", "professional", "job"),
    ("The user drives a Toyota Corolla.", "personal", "Sold the Corolla, I drive an electric Kia EV6 now.",
     "The user drives an electric Kia EV6.", "personal", "car"),
    ("The user has a dog named Rex.", "personal", "Rex passed away last week, I'm heartbroken.",
     "The user's dog Rex died last week.", "personal", "pets"),
    ("The user smokes a pack of cigarettes a day.", "health", "I quit smoking three months ago!",
     "The user quit smoking three months ago.", "health", "smoking"),
    ("The user goes running every morning.", "activity", "My knee is bad so I swim instead of running now.",
     "The user swims instead of running because of a bad knee.", "activity", "exercise"),
    ("The user is studying law at university.", "professional", "I graduated in June, finally done with uni!",
     "The user graduated from university in June.", "professional", "education"),
    ("The user drinks three coffees a day.", "health", "I've given up coffee completely.",
     "The user no longer drinks coffee.", "health", "diet"),
    ("The user's favourite band is Coldplay.", "preference", "These days my favourite band is Radiohead.",
     "The user's favourite band is now Radiohead.", "preference", "favourite_music"),
    ("The user takes metformin for diabetes.", "health", "My doctor switched me to insulin.",
     "The user now takes insulin for diabetes.", "health", "medication"),
    ("The user plans to visit Japan in April.", "plan", "We cancelled the Japan trip, sadly.",
     "The user cancelled the trip to Japan.", "plan", None),
    ("The user is learning Spanish.", "activity", "I gave up on Spanish and started German instead.",
     "The user is learning German instead of Spanish.", "activity", "language_learning"),
    ("The user lives in Toronto.", "personal", "We relocated to Vancouver for my wife's job.",
     "The user relocated to Vancouver.", "personal", "home"),
    ("The user is a junior accountant.", "professional", "I got promoted to finance manager!",
     "The user was promoted to finance manager.", "professional", "job"),
    ("The user has a girlfriend called Mia.", "personal", "Mia and I broke up.", "The user broke up with Mia.",
     "personal", "relationship"),
    ("The user uses a Windows laptop.", "personal", "I switched to a MacBook Air for work and home.",
     "The user uses a MacBook Air.", "personal", "computer"),
    ("The user banks with HSBC.", "personal", "I moved all my accounts to Monzo.", "The user now banks with Monzo.",
     "personal", "bank"),
    ("The user is a member of PureGym.", "activity", "I cancelled my gym membership.",
     "The user cancelled the gym membership.", "activity", "gym"),
    ("The user's son attends Hillside Primary School.", "personal",
     "Our son started at Oakwood Secondary in September.", "The user's son now attends Oakwood Secondary School.",
     "personal", "children_school"),
    ("The user goes to bed around midnight.", "health", "I go to sleep at 10pm these days.",
     "The user now goes to bed at 10 pm.", "health", "sleep"),
    ("The user works from the office five days a week.", "professional", "My company went fully remote.",
     "The user works fully remotely.", "professional", "workplace"),
    ("The user drinks wine most evenings.", "health", "I've been sober since January.",
     "The user has not drunk alcohol since January.", "health", "alcohol"),
    ("The user plays the violin in an amateur orchestra.", "activity", "I left the orchestra last month.",
     "The user left the amateur orchestra.", "activity", None),
    ("The user weighs 90 kg.", "health", "I'm down to 78 kg!", "The user now weighs 78 kg.", "health", "weight"),
    ("The user lives in Brooklyn.", "personal", "Moved to Queens last week, the boxes are everywhere.",
     "The user moved to Queens.", "personal", "home"),
    ("The user is unemployed and looking for work.", "professional", "I start a job at the city library on Monday!",
     "The user got a job at the city library.", "professional", "job"),
    ("The user works as a history teacher.", "professional", "I retired at the end of the school year.",
     "The user retired.", "professional", "job"),
    ("The user does not own a car.", "personal", "I bought my first car, a Fiat 500!",
     "The user bought a Fiat 500.", "personal", "car"),
    ("The user is vegetarian.", "health", "I started eating fish again.",
     "The user eats fish again and is pescatarian.", "health", "diet"),
    ("The user lives alone.", "personal", "My boyfriend Tom moved in with me.", "The user lives with boyfriend Tom.",
     "personal", "household"),
    ("The user plays tennis every Saturday.", "activity", "I stopped tennis after my shoulder injury.",
     "The user stopped playing tennis after a shoulder injury.", "activity", None),
    ("The user is pregnant.", "health", "Our daughter Lily was born on 3 May!",
     "The user's daughter Lily was born on 3 May.", "personal", "pregnancy"),
    ("The user works night shifts.", "professional", "I'm on day shifts now, so much better.",
     "The user works day shifts now.", "professional", "work_hours"),
]

NON_CHANGES: list[tuple[str, str, str, str, str, str | None]] = [
    ("The user lives in Lisbon.", "personal", "I went to the tile museum in Lisbon on Sunday.",
     "The user visited the tile museum in Lisbon.", "activity", None),
    ("The user works as a chef.", "professional", "My restaurant just won a regional award!",
     "The user's restaurant won a regional award.", "professional", None),
    ("The user is married to Jordan.", "personal", "Jordan and I celebrated our anniversary in Rome.",
     "The user and Jordan celebrated their anniversary in Rome.", "activity", None),
    ("The user has a cat named Miso.", "personal", "I bought Miso a new scratching post.",
     "The user bought a scratching post for Miso.", "activity", None),
    ("The user drives a Volvo.", "personal", "Took the Volvo in for its service today.",
     "The user had the Volvo serviced.", "activity", None),
    ("The user plays the guitar.", "activity", "I learned a new song on the guitar this week.",
     "The user learned a new song on the guitar.", "activity", None),
    ("The user is allergic to peanuts.", "health", "I always carry an EpiPen now.",
     "The user carries an EpiPen.", "health", None),
    ("The user commutes by bus.", "activity", "The bus was forty minutes late on Monday.",
     "The user's bus was forty minutes late on Monday.", "activity", None),
    ("The user has asthma.", "health", "I use my inhaler before I go running.",
     "The user uses an inhaler before running.", "health", None),
    ("The user studies medicine.", "professional", "I have my anatomy exam in June.",
     "The user has an anatomy exam in June.", "plan", None),
    ("The user plans to run a marathon in October.", "plan", "I ran 25 km in training yesterday.",
     "The user ran 25 km in marathon training.", "activity", None),
    ("The user works at Google.", "professional", "My manager at Google is called Priya.",
     "The user's manager at Google is Priya.", "professional", None),
    ("The user has two children.", "personal", "My eldest started piano lessons.",
     "The user's eldest child started piano lessons.", "personal", None),
    ("The user likes jazz.", "preference", "I went to the Montreux jazz festival!",
     "The user went to the Montreux Jazz Festival.", "activity", None),
    ("The user's sister lives in Madrid.", "personal", "My sister in Madrid just had a baby boy.",
     "The user's sister had a baby boy.", "personal", None),
    ("The user speaks French.", "personal", "I'm also learning Italian now.", "The user is also learning Italian.",
     "activity", None),
    ("The user lives in a flat in Glasgow.", "personal", "I painted the living room of my flat green.",
     "The user painted the living room of the flat green.", "activity", None),
    ("The user has a Samsung phone.", "personal", "I cracked the screen of my phone.",
     "The user cracked the phone's screen.", "activity", None),
    ("The user does yoga on Sundays.", "activity", "I bought a new yoga mat.", "The user bought a new yoga mat.",
     "activity", None),
    ("The user's favourite film is Alien.", "preference", "I watched Aliens for the first time, loved it.",
     "The user watched Aliens and loved it.", "preference", None),
    ("The user works as a paramedic.", "professional", "I worked an extra shift on Friday.",
     "The user worked an extra shift on Friday.", "activity", None),
    ("The user owns a bakery.", "professional", "My bakery started selling sourdough.",
     "The user's bakery sells sourdough.", "professional", None),
    ("The user lives with partner Sam.", "personal", "Sam and I adopted a dog called Biscuit.",
     "The user and Sam adopted a dog called Biscuit.", "personal", None),
    ("The user supports Liverpool FC.", "preference", "I finally saw a match at Anfield.",
     "The user watched a match at Anfield.", "activity", None),
    ("The user takes the tram to work.", "activity", "I read novels on the tram every morning.",
     "The user reads novels on the tram.", "activity", None),
    ("The user is learning Japanese.", "activity", "I passed the JLPT N4 exam!", "The user passed the JLPT N4 exam.",
     "activity", None),
    ("The user grows tomatoes in the garden.", "activity", "I made sauce from my garden tomatoes.",
     "The user made sauce from the garden tomatoes.", "activity", None),
    ("The user volunteers at the animal shelter.", "activity", "I walked the shelter dogs on Saturday.",
     "The user walked the shelter dogs on Saturday.", "activity", None),
    ("The user has a mortgage with Nationwide.", "personal", "We overpaid the mortgage by 2,000 pounds.",
     "The user overpaid the mortgage by 2,000 pounds.", "activity", None),
    ("The user is a vegetarian who loves curry.", "preference", "I cooked a chickpea curry for friends.",
     "The user cooked a chickpea curry for friends.", "activity", None),
]

# Distractors: the rest of a life, in the pairs' own words.
PEOPLE = ["sister", "brother", "cousin", "best friend", "neighbour", "colleague", "aunt", "uncle", "flatmate",
          "old school friend", "mother", "father", "godson", "former boss", "yoga teacher"]
NAMES = ["Ana", "Kofi", "Yuki", "Liam", "Zara", "Mateo", "Ines", "Omar", "Priya", "Lars", "Chen", "Noor", "Tomasz",
         "Amara", "Jonas", "Leila", "Diego", "Hana", "Felix", "Ruth", "Ivo", "Sade", "Bruno", "Maren"]
CITIES = ["Berlin", "Paris", "Leeds", "York", "Toronto", "Vancouver", "Madrid", "Rome", "Lisbon", "Queens",
          "Brooklyn", "Osaka", "Glasgow", "Munich", "Porto", "Cork", "Tallinn", "Quito", "Perth", "Bergen"]
JOBS = ["nurse", "software developer", "teacher", "accountant", "engineer", "chef", "librarian", "paramedic",
        "pilot", "architect", "lawyer", "plumber", "journalist", "pharmacist"]
THINGS = ["phone", "laptop", "bike", "car", "camera", "guitar", "watch", "tablet", "headphones", "kettle"]
BRANDS = ["Pixel", "iPhone", "MacBook", "Toyota", "Kia", "Fiat", "Canon", "Yamaha", "Garmin", "Sony"]
FOODS = ["ramen", "paella", "tacos", "pho", "lasagne", "sushi", "curry", "falafel", "dumplings", "risotto"]
ACTIVITIES = ["went hiking", "took the train to a wedding", "cycled along the river", "visited a museum",
              "went to a concert", "ran a 10 km race", "went swimming in the lake", "took a pottery class",
              "watched a football match", "went to the cinema", "played board games", "volunteered at a food bank",
              "helped a friend move flat", "went to a jazz bar", "took a cooking class", "visited a vineyard"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _distractors(rng: random.Random, count: int) -> list[dict[str, str]]:
    """``count`` distinct memories of every type that share words with the pairs but are about other things."""
    makers = [
        lambda: (f"The user's {rng.choice(PEOPLE)} {rng.choice(NAMES)} lives in {rng.choice(CITIES)}.", "personal"),
        lambda: (f"The user's {rng.choice(PEOPLE)} {rng.choice(NAMES)} works as {_a(rng.choice(JOBS))}.", "personal"),
        lambda: (f"The user's {rng.choice(PEOPLE)} {rng.choice(NAMES)} has a birthday in {rng.choice(MONTHS)}.",
                 "personal"),
        lambda: (f"In {rng.choice(MONTHS)} {rng.randint(2018, 2026)} the user {rng.choice(ACTIVITIES)} in "
                 f"{rng.choice(CITIES)}.", "activity"),
        lambda: (f"In {rng.choice(MONTHS)} {rng.randint(2018, 2026)} the user {rng.choice(ACTIVITIES)} with "
                 f"{rng.choice(NAMES)}.", "activity"),
        lambda: (f"The user lent {_a(rng.choice(THINGS))} to {rng.choice(NAMES)}.", "activity"),
        lambda: (f"The user enjoys {rng.choice(FOODS)} at a small place in {rng.choice(CITIES)}.", "preference"),
        lambda: (f"The user thinks {rng.choice(BRANDS)} makes a good {rng.choice(THINGS)}.", "preference"),
        lambda: (f"The user would like to visit {rng.choice(CITIES)} with {rng.choice(NAMES)} one day.", "plan"),
        lambda: (f"The user plans to buy a new {rng.choice(THINGS)} for {rng.choice(NAMES)}'s birthday.", "plan"),
        lambda: (f"The user had a check-up with a doctor in {rng.choice(CITIES)} in {rng.choice(MONTHS)}.",
                 "health"),
        lambda: (f"The user's {rng.choice(PEOPLE)} {rng.choice(NAMES)} recommended {_a(rng.choice(JOBS))} to the "
                 "user.", "professional"),
        lambda: (f"The user worked on a project with {_a(rng.choice(JOBS))} from {rng.choice(CITIES)}.",
                 "professional"),
    ]
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    while len(out) < count:
        content, type_ = rng.choice(makers)()
        if content not in seen:
            seen.add(content)
            out.append({"content": content, "type": type_})
    return out


def _pairs(rows: list[tuple[str, str, str, str, str, str | None]], kind: str) -> list[dict[str, Any]]:
    return [{"id": f"{kind}-{i:02d}", "kind": kind,
             "old": {"content": old, "type": old_type, "subject": subject},
             "message": message,
             "fact": {"content": fact, "type": fact_type, "subject": subject}}
            for i, (old, old_type, message, fact, fact_type, subject) in enumerate(rows)]


def build(distractors: int = 520, seed: int = 20) -> dict[str, Any]:
    rng = random.Random(seed)
    return {
        "description": "Hand-labelled life changes and look-alike non-changes, each with the memory it concerns, "
                       "and distractor memories of the same user (bench/changes_set.py).",
        "pairs": _pairs(CHANGES, "change") + _pairs(NON_CHANGES, "same"),
        "distractors": _distractors(rng, distractors),
    }


def load() -> dict[str, Any]:
    return json.loads(PATH.read_text(encoding="utf-8"))


if __name__ == "__main__":
    PATH.write_text(json.dumps(build(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {PATH}")
