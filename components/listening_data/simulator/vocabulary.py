"""The simulated world's fixed vocabularies: platforms, genres, tags, countries, rhythms, names.

Every table here is data, not behaviour: which genres exist and how common they are, each
genre's audio profile and tag words, the countries (UTC offset, user share, iOS and premium
shares), the diurnal session curve and the words names are made of. Changing an entry changes
every preset's files, so the presets' byte-identical outputs pin these tables.
"""

import numpy as np

PLATFORMS = ("android", "ios", "desktop", "web", "smart_speaker")
ANDROID, IOS, DESKTOP, WEB, SPEAKER = range(len(PLATFORMS))

REASONS_START = ("appload", "clickrow", "playbtn", "remote", "trackdone", "fwdbtn", "backbtn")
REASONS_END = ("trackdone", "fwdbtn", "endplay", "logout", "backbtn")
REASON_START_INDEX = {name: i for i, name in enumerate(REASONS_START)}
REASON_END_INDEX = {name: i for i, name in enumerate(REASONS_END)}


GENRES = (
    "pop", "rock", "hip hop", "r&b", "electronic", "house", "techno", "indie", "folk", "country",
    "jazz", "classical", "metal", "punk", "reggae", "latin", "k-pop", "soul", "blues", "ambient",
)
# Share of artists per genre (normalised below).
GENRE_SHARE = np.array(
    [12, 9, 11, 6, 6, 5, 4, 7, 4, 5, 4, 3, 4, 3, 3, 6, 4, 3, 2, 3], dtype=np.float64
)
GENRE_SHARE /= GENRE_SHARE.sum()
# Per genre: tempo (BPM), energy, danceability, valence, acousticness, mean duration (s).
GENRE_AUDIO = np.array(
    [
        (118, 0.68, 0.68, 0.55, 0.18, 205), (126, 0.78, 0.50, 0.48, 0.12, 235),
        (98, 0.65, 0.78, 0.48, 0.14, 210), (100, 0.55, 0.68, 0.50, 0.25, 220),
        (124, 0.78, 0.64, 0.42, 0.06, 250), (124, 0.80, 0.78, 0.55, 0.04, 330),
        (130, 0.85, 0.70, 0.30, 0.03, 400), (120, 0.60, 0.55, 0.45, 0.30, 225),
        (110, 0.38, 0.50, 0.45, 0.72, 220), (118, 0.62, 0.58, 0.58, 0.30, 200),
        (110, 0.38, 0.55, 0.52, 0.65, 320), (95, 0.18, 0.30, 0.30, 0.92, 420),
        (135, 0.92, 0.40, 0.30, 0.02, 280), (160, 0.90, 0.45, 0.50, 0.03, 160),
        (90, 0.60, 0.75, 0.70, 0.20, 230), (105, 0.75, 0.76, 0.68, 0.18, 210),
        (122, 0.78, 0.70, 0.60, 0.10, 205), (104, 0.50, 0.62, 0.60, 0.35, 215),
        (100, 0.50, 0.50, 0.45, 0.45, 260), (85, 0.15, 0.25, 0.20, 0.85, 380),
    ],
    dtype=np.float64,
)
GENRE_TAGS = (
    ("catchy", "chart", "radio", "synth-pop", "hook", "bubblegum", "dance-pop", "singalong"),
    ("guitar", "riff", "anthem", "arena", "distortion", "drums", "classic-rock", "grunge"),
    ("rap", "beats", "trap", "boom-bap", "bars", "freestyle", "808", "flow"),
    ("smooth", "slow-jam", "groove", "falsetto", "neo-soul", "sensual", "contemporary",
     "harmonies"),
    ("synth", "edm", "drop", "bass", "glitch", "idm", "synthwave", "electro"),
    ("four-on-the-floor", "deep-house", "disco", "club", "piano-house", "vocal-house",
     "tech-house", "garage"),
    ("warehouse", "minimal", "berlin", "acid", "hypnotic", "industrial", "rave", "modular"),
    ("lo-fi", "bedroom-pop", "jangle", "shoegaze", "dream-pop", "alternative", "diy", "indie-rock"),
    ("acoustic-guitar", "storytelling", "banjo", "singer-songwriter", "traditional", "harmonica",
     "campfire", "americana"),
    ("twang", "honky-tonk", "pickup-truck", "nashville", "steel-guitar", "bluegrass", "outlaw",
     "line-dance"),
    ("swing", "bebop", "saxophone", "improvisation", "trumpet", "big-band", "smooth-jazz",
     "standards"),
    ("orchestral", "symphony", "piano", "strings", "baroque", "opera", "chamber", "sonata"),
    ("heavy", "thrash", "doom", "shred", "double-bass", "growl", "headbang", "breakdown"),
    ("fast", "raw", "hardcore", "pogo", "three-chord", "skate", "riot", "pop-punk"),
    ("dub", "roots", "skank", "dancehall", "island", "offbeat", "rocksteady", "ska"),
    ("reggaeton", "salsa", "bachata", "cumbia", "perreo", "tropical", "latin-pop", "dembow"),
    ("idol", "choreography", "comeback", "hallyu", "girl-group", "boy-band", "k-ballad", "fandom"),
    ("motown", "gospel", "funk", "brass", "vintage", "northern-soul", "sweet-soul", "horns"),
    ("delta", "slide-guitar", "twelve-bar", "chicago-blues", "juke-joint", "electric-blues",
     "blue-notes", "crossroads"),
    ("drone", "atmospheric", "meditation", "soundscape", "chill", "sleep", "field-recording",
     "ethereal"),
)
# Mood and lyric keywords; which ones a track gets depends on its latent vector.
MOOD_TAGS = (
    "love", "heartbreak", "summer", "night", "party", "dance", "rain", "road", "city", "dreams",
    "freedom", "lonely", "home", "fire", "ocean", "sunset", "midnight", "memories", "youth",
    "money", "hustle", "faith", "rebellion", "friendship", "nostalgia", "euphoric", "melancholic",
    "uplifting", "dark", "energetic", "mellow", "romantic", "angry", "hopeful", "sad", "happy",
    "workout", "focus", "study", "driving", "morning", "late-night", "rainy-day", "roadtrip",
    "wedding", "breakup", "healing", "confidence", "celebration", "winter", "spring", "autumn",
    "stars", "moon", "sun", "heart", "tears", "kiss", "goodbye", "forever", "tonight", "weekend",
    "highway", "neon", "gold", "diamonds", "ghost", "angel", "devil", "paradise", "storm",
    "thunder", "river", "mountain", "desert", "wild", "young", "crazy", "alone", "together",
    "lost", "running", "falling", "flying", "burning", "dreaming", "waiting", "dancing", "crying",
    "smile", "revenge", "loyalty", "street", "family", "hometown", "childhood", "escape",
    "rebirth", "chaos", "calm", "cosmic", "velvet", "electric", "golden-hour", "bittersweet",
    "introspective", "cinematic", "groovy", "dreamy", "gritty", "playful", "spiritual", "vibes",
    "nightlife", "daydream", "sunrise", "seaside", "rooftop", "heat", "ice", "shadows", "mirror",
)
TAG_VOCABULARY = tuple(t for tags in GENRE_TAGS for t in tags) + MOOD_TAGS
assert len(set(TAG_VOCABULARY)) == len(TAG_VOCABULARY), "tag vocabulary must be unique"
assert len(GENRE_TAGS) == len(GENRES) == len(GENRE_AUDIO) == len(GENRE_SHARE)

# code, UTC offset (h), share of users, iOS share of phones, premium share.
COUNTRIES = (
    ("US", -5.0, 22, 0.55, 0.50), ("GB", 0.0, 8, 0.50, 0.50), ("DE", 1.0, 8, 0.40, 0.50),
    ("FR", 1.0, 5, 0.35, 0.45), ("SE", 1.0, 3, 0.50, 0.60), ("NL", 1.0, 3, 0.45, 0.55),
    ("ES", 1.0, 4, 0.30, 0.40), ("IT", 1.0, 3, 0.30, 0.40), ("PL", 1.0, 3, 0.20, 0.35),
    ("BR", -3.0, 10, 0.15, 0.30), ("MX", -6.0, 7, 0.20, 0.30), ("CA", -5.0, 4, 0.50, 0.50),
    ("JP", 9.0, 4, 0.65, 0.40), ("IN", 5.5, 6, 0.10, 0.20), ("AU", 10.0, 3, 0.50, 0.55),
    ("ID", 7.0, 3, 0.15, 0.25), ("KR", 9.0, 2, 0.40, 0.45), ("AR", -3.0, 2, 0.20, 0.30),
    ("PH", 8.0, 2, 0.20, 0.25), ("TR", 3.0, 2, 0.25, 0.30),
)
COUNTRY_CODES = np.array([c[0] for c in COUNTRIES], dtype=object)
COUNTRY_OFFSET_S = np.array([c[1] * 3600 for c in COUNTRIES])
COUNTRY_SHARE = np.array([c[2] for c in COUNTRIES], dtype=np.float64)
COUNTRY_SHARE /= COUNTRY_SHARE.sum()
COUNTRY_IOS = np.array([c[3] for c in COUNTRIES])
COUNTRY_PREMIUM = np.array([c[4] for c in COUNTRIES])

# Share of sessions started in each local hour (weekday, weekend).
DIURNAL = np.array(
    [
        [1.2, 0.7, 0.4, 0.25, 0.2, 0.35, 1.0, 2.2, 3.0, 2.6, 2.2, 2.2,
         2.5, 2.4, 2.3, 2.4, 2.7, 3.2, 3.4, 3.4, 3.3, 3.0, 2.5, 1.8],
        [2.0, 1.4, 0.9, 0.5, 0.3, 0.3, 0.5, 0.9, 1.5, 2.2, 2.7, 3.0,
         3.1, 3.0, 2.9, 2.9, 3.0, 3.2, 3.3, 3.4, 3.5, 3.4, 3.0, 2.5],
    ]
)
DIURNAL /= DIURNAL.sum(axis=1, keepdims=True)
# Session-rate multiplier per weekday, Monday first.
WEEKDAY_RATE = np.array([0.97, 0.95, 0.97, 1.0, 1.08, 1.12, 1.02])

TITLE_WORDS = (
    "Love", "Night", "Summer", "Heart", "Fire", "Dream", "Light", "Rain", "City", "Road", "Gold",
    "Stars", "Moon", "Sun", "Ocean", "River", "Ghost", "Angel", "Paradise", "Storm", "Thunder",
    "Midnight", "Sunset", "Neon", "Velvet", "Diamond", "Shadow", "Mirror", "Echo", "Wild",
    "Young", "Forever", "Tonight", "Home", "Highway", "Kiss", "Tears", "Smile", "Escape",
    "Running", "Falling", "Flying", "Burning", "Dancing", "Waiting", "Lost", "Found", "Blue",
    "Red", "Golden", "Silver", "Electric", "Cosmic", "Sweet", "Bitter", "Lonely", "Crazy",
    "Secret", "Silent", "Broken", "Endless", "Hollow", "Northern", "Southern", "Paper", "Glass",
    "Honey", "Sugar", "Cherry", "Lemon", "Wolf", "Tiger", "Bird", "Butterfly", "Rose", "Garden",
    "Island", "Desert", "Mountain", "Valley", "Window", "Door", "Train", "Radio", "Satellite",
    "Rocket", "Heaven", "Hell", "Fever", "Poison", "Magic", "Gravity", "Motion", "Signal",
    "Static", "Wave", "Tide", "Thunderbird", "Carousel", "Lullaby", "Serenade", "Anthem",
    "Ballad", "Parade", "Riot", "Ritual", "Vision", "Memory", "Promise", "Letter", "Story",
    "Kingdom", "Empire", "Horizon", "Sky", "Cloud", "Snow", "Winter", "Spring", "Autumn",
    "Morning", "Evening", "Weekend", "Holiday", "Dust", "Smoke", "Stone", "Iron", "Velour",
    "Caravan", "Harbor", "Lantern", "Compass", "Atlas", "Orbit", "Pulse", "Bloom", "Ember",
)
FIRST_NAMES = (
    "Ava", "Leo", "Maya", "Noah", "Luna", "Kai", "Zara", "Milo", "Nina", "Theo", "Iris", "Jude",
    "Lola", "Finn", "Cleo", "Omar", "Rosa", "Ezra", "Mae", "Hugo", "Ines", "Felix", "Yara",
    "Arlo", "Sofia", "Mateo", "Hana", "Jin", "Amara", "Diego", "Elsa", "Rafael", "Priya",
    "Tomas", "Lena", "Marcus", "Alma", "Victor", "June", "Santi",
)
LAST_NAMES = (
    "Rivers", "Stone", "Vega", "Moreau", "Kim", "Okafor", "Lindqvist", "Costa", "Nakamura",
    "Hart", "Blake", "Silva", "Novak", "Reyes", "Fischer", "Quinn", "Marlowe", "Santos", "Lane",
    "Hayes", "Ibarra", "Park", "Dubois", "Bennett", "Castillo", "Frost", "Wilde", "Mendes",
    "Sato", "Keller", "Rossi", "Adeyemi", "Holm", "Cruz", "Everett", "Lopez", "Yamada",
    "Schwarz", "Ortega", "Bloom",
)
BASE62 = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8
)
BASE36 = BASE62[:36].copy()
BASE36[10:] = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)

