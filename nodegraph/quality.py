"""The prompt-quality judge: an explainable score from features of the text and its embedding.

The rule it follows (the same one the labeled set in tests/data/ states): a prompt is
good when a painter could start without asking questions, that is when it names a
concrete subject, a setting or context, and at least two visual attributes (light,
color, composition, medium or style, texture, weather or atmosphere).

`analyze` finds those parts with word lists and a few patterns, `score_prompt` turns
them into a score in 0..1 with a logistic model whose weights were fitted on the
labeled set (`benchmarks/train_quality.py` writes `nodegraph/data/quality.json`), and
each missing part becomes one line of `reasons`. An embedding from all-MiniLM-L6-v2
adds one more feature: its cosine with the direction from weak to strong prompts.
No LLM is needed; the embedded one is too small to judge.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

WEIGHTS_FILE = Path(__file__).resolve().parent / "data" / "quality.json"

# A language mismatch caps the score below QualityBranch's default threshold of 0.6,
# so the prompt is rewritten (translated) before the image model reads it.
LANGUAGE_CAP = 0.45

# --- word lists --------------------------------------------------------------------
# Phrases are matched before single words; a run of adjacent attribute words is one attribute.

LIGHT = """light lights lighting lit sunlit sunlight sunlights sunbeam sunbeams sunshine moonlight moonlit starlight
candlelight candlelit lamplight lamplit firelight torchlight backlight backlit backlighting rim glow glowing glows
shadow shadows shadowy dappled sunrise sunset sundown dawn dusk twilight night nighttime midnight noon midday
morning afternoon evening overcast spotlight spotlit neon luminous radiant rays shafts gleaming shimmering
silhouette silhouetted chiaroscuro flare bright dim dark darkness sunny daylight lightning bioluminescence
bioluminescent lanterns lantern-lit flickering glare bulb bulbs lamp lamps candles fluorescent
incandescent illuminated glowed reflections reflection sparkling twinkling sun""".split()
LIGHT_PHRASES = ["golden hour", "blue hour", "rim light", "soft light", "hard light", "side light", "lens flare",
                 "rembrandt lighting", "studio lighting", "natural light", "window light", "string lights",
                 "street lamps", "street lamp", "full moon", "harsh sun", "low sun", "morning sun", "evening sun",
                 "god rays", "sun rays", "volumetric light", "first light", "last light", "side lighting",
                 "rim lighting", "soft lighting", "dramatic lighting", "cinematic lighting", "top light"]
COLOR = """red reds orange oranges yellow yellows green greens blue blues purple purples violet pink pinks white
black grey gray greys grays brown browns gold golden silver crimson scarlet teal cyan magenta turquoise amber ochre
beige cream sepia monochrome monochromatic pastel pastels vivid vibrant muted colorful colourful palette tones
toned hues saturated desaturated cobalt emerald ivory rust rusty bronze copper iridescent peach lavender navy
maroon indigo azure jade charcoal-grey earthy faded""".split()
COLOR_PHRASES = ["black and white", "black-and-white", "color palette", "colour palette", "warm tones", "cool tones",
                 "color grade", "colour grade", "teal and orange"]
COMPOSITION = """close-up closeup close-ups wide-angle aerial overhead top-down birds-eye centered centred symmetrical
symmetry composition composed framing framed foreground bokeh macro telephoto fisheye panorama panoramic headshot
profile portrait-orientation landscape-orientation isometric diagonal minimalist minimal silhouette perspective
drone vanishing tiny-in-the-frame""".split()
COMPOSITION_PHRASES = ["close up", "wide shot", "wide angle", "long shot", "medium shot", "full body", "full-body shot",
                       "low angle", "high angle", "low camera angle", "eye level", "side view", "front view", "rear view",
                       "top view", "bird's-eye view", "bird's eye view", "aerial view", "aerial perspective",
                       "rule of thirds", "depth of field", "shallow focus", "soft focus", "sharp focus on",
                       "motion blur", "long exposure", "empty space", "negative space", "leading lines",
                       "dutch angle", "85mm", "50mm", "35mm", "24mm", "over the shoulder", "tiny in the frame",
                       "in the frame", "seen from above", "seen from below", "from above", "from below",
                       "action shot", "establishing shot", "portrait shot", "flat lay"]
MEDIUM = """photo photograph photography photographic photorealistic realistic hyperrealistic painting painted
painterly oil oils watercolor watercolour watercolors gouache acrylic acrylics pastel charcoal pencil sketch
sketched drawing drawn ink etching engraving lithograph woodblock woodcut ukiyo-e linocut render rendered cgi
illustration illustrated anime manga cartoon comic impressionist impressionism expressionist cubist surreal
surrealist dreamlike impasto brushstrokes brushwork cinematic film polaroid grainy grain noir storybook
gouache vector lowpoly low-poly voxel claymation isometric mural fresco tempera collage papercut origami
documentary candid editorial analog kodachrome""".split()
MEDIUM_PHRASES = ["oil painting", "oil on canvas", "digital art", "digital painting", "concept art", "matte painting",
                  "pixel art", "3d render", "3d", "pen and ink", "ink wash", "film still", "film photo",
                  "film photograph", "film grain", "children's book", "book illustration", "in the style of",
                  "style of", "in the manner of", "art nouveau", "art deco", "studio ghibli", "line art",
                  "product shot", "product photo", "still life", "wildlife photo", "street photography",
                  "architectural render", "loose edges", "visible brushstrokes", "washes"]
TEXTURE = """wooden weathered mossy glossy velvet velvety metallic shiny textured rough smooth wet dusty silky
peeling cracked polished frosted translucent transparent matte furry fluffy feathered woven knitted marble
stainless rustic gritty worn dented intricate oily greasy textures texture""".split()
WEATHER = """fog foggy mist misty haze hazy rain rainy raining drizzle snow snowy snowing storm stormy thunderstorm
clouds cloudy smoke smoky steam steaming steamy dust dusty moody atmospheric serene eerie gloomy cozy cosy
dramatic tranquil calm windy frost frosty icy humid spray puddles raindrops droplets condensation dew""".split()
# Weather words that name a setting after a preposition: "a fox in the snow".
WEATHER_PLACES = set("snow rain fog mist storm haze smoke dust clouds".split())
WEATHER_PHRASES = ["falling snow", "soft rain", "heavy fog", "spring rain", "fresh snow"]

ATTRIBUTE_WORDS = {word: "light" for word in LIGHT}
for _words, _category in ((COLOR, "color"), (COMPOSITION, "composition"), (MEDIUM, "medium"),
                          (TEXTURE, "texture"), (WEATHER, "atmosphere")):
    for _word in _words:
        ATTRIBUTE_WORDS.setdefault(_word, _category)
ATTRIBUTE_PHRASES = sorted(
    [(phrase, "light") for phrase in LIGHT_PHRASES] + [(phrase, "color") for phrase in COLOR_PHRASES]
    + [(phrase, "composition") for phrase in COMPOSITION_PHRASES] + [(phrase, "medium") for phrase in MEDIUM_PHRASES]
    + [(phrase, "atmosphere") for phrase in WEATHER_PHRASES],
    key=lambda item: -len(item[0]),
)
# Words that join attributes into one run ("deep blue", "warm golden light").
ATTRIBUTE_MODIFIERS = set("soft warm cool cold deep pale light dark rich bold strong gentle harsh subtle thick loose "
                          "crisp clean late early hard single".split())

SETTING_NOUNS = set("""background backdrop landscape forest forests woods jungle rainforest beach shore coast coastline
sea ocean bay harbor harbour lagoon lake pond river stream waterfall canal fjord city town village street streets
alley road avenue square market plaza rooftop skyline room bedroom kitchen library studio cafe restaurant bar shop
bookshop bakery office classroom hall ballroom cathedral church temple palace castle tower courtyard garden gardens
greenhouse park field fields meadow meadows farm farmhouse barn vineyard orchard mountain mountains hill hills
valley canyon cliff cliffs desert dunes savanna plain plains prairie tundra glacier iceberg island islands cave
cavern sky skies space planet moon underwater reef seabed swamp marsh grove clearing trail path bridge pier dock
quay port station platform subway tunnel highway interior exterior stage arena stadium museum gallery attic
basement cellar garage workshop forge laboratory lab greenhouse backyard yard porch balcony window windowsill
table desk counter shelf floor wall walls bed sofa couch grass lawn snow ice sand water clouds horizon
countryside wilderness highlands tropics arctic savannah terraces corridor hallway hall staircase stairs lobby
hospital school church mosque airport harbour subway diner motel hotel apartment loft cottage cabin hut tent
shore riverbank wharf marina farmyard pasture paddock ranch steppe moor heath bog delta oasis volcano crater
nebula galaxy orbit seafloor rooftops skyline downtown suburb alleyway courtyard cloister crypt dungeon throne
battlefield racetrack runway stadium playground outdoors indoors""".split())
PLACE_PREPOSITIONS = set("on in at under beneath below beside near by behind above over across through along against "
                         "among amid amidst inside outside around within atop into onto between underneath before "
                         "from down up toward towards past beyond".split())
# "in watercolor", "at night", "in the style of": prepositions that introduce attributes, not places.
NOT_A_PLACE = set("style manner watercolor watercolour oil oils ink pencil color colour colors focus motion "
                  "viewer camera black night dawn dusk sunset sunrise noon midday midnight twilight daylight moonlight sunlight "
                  "the-style shades tones profile silhouette frame detail".split())

STOPWORDS = set("""a an the of and or but with without to for from by as is are was were be been being it its this
that these those there here his her their our your my me i we you he she they them him us very really so too just
some any each every all both few many much more most other another such own same than then into onto out up down
off about while during before after again once also only not no nor can will would should could may might must
shall do does did doing has have had having what which who whom whose when where why how let lets one two three
four five six seven eight nine ten""".split())
VAGUE_WORDS = set("""picture pictures image images photo art artwork thing things stuff something anything everything
scene scenes view nice cool awesome amazing stunning beautiful gorgeous pretty perfect good great best ever made make
makes create generate draw render show please want like need some kind sort epic incredible wonderful lovely cute
fantastic interesting random whatever someone somebody somewhere idea ideas wallpaper presentation logo design
item object objects detailed""".split())
QUALITY_TAGS = set("masterpiece best-quality quality ultra hd uhd 4k 8k 16k hdr highres high-res resolution "
                   "detailed highly trending artstation award winning award-winning unreal octane".split())
ABSTRACT_WORDS = set("""happiness freedom hope love meaning life concept time emotion emotions feeling feelings peace
joy sadness fear anger loneliness dream dreams memory memories future past truth beauty nature world fantasy
chaos harmony soul spirit infinity eternity existence idea ideas""".split())
REQUEST_START = re.compile(r"^\s*(write|tell|explain|what|why|how|who|when|where|which|translate|summari[sz]e|"
                           r"list|give me|can you|could you|is|are|do|does)\b", re.IGNORECASE)

WORD_PATTERN = re.compile(r"[a-z0-9]+(?:['’-][a-z0-9]+)*")
HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
KANA = re.compile(r"[\u3040-\u30ff]")
HANGUL = re.compile(r"[\uac00-\ud7af]")
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
LATIN_LETTER = re.compile(r"[A-Za-z]")
FOREIGN_LATIN_WORDS = {
    "French": set("le la les des une un et dans avec sur sous chat chien maison ciel soleil".split()),
    "Spanish": set("el los las una y en con sobre bajo perro gato casa cielo sol".split()),
    "German": set("der die das ein eine und mit auf unter im hund katze haus himmel sonne".split()),
}

# Chinese: a handful of attribute and place markers, enough to explain a Chinese prompt's content.
ZH_ATTRIBUTES = {
    "light": "光 阳光 灯光 月光 夕阳 黄昏 清晨 晨光 逆光 阴影 夜晚 夜景 午后 日落 日出 霓虹".split(),
    "color": "色 色调 红 蓝 绿 黄 金色 白色 黑白 粉 紫 暖色 冷色".split(),
    "composition": "构图 特写 广角 俯视 仰视 全景 景深 镜头".split(),
    "medium": "油画 水彩 摄影 照片 插画 素描 水墨 风格 胶片 电影感 渲染".split(),
    "atmosphere": "雾 薄雾 雨 雪 烟 蒸汽 氛围 宁静".split(),
}
ZH_PLACES = "在 草地 花丛 海边 山 森林 城市 街 房间 窗台 码头 竹林 湖 河 天空 背景 公园 花园 屋 沙滩 田野 木屋".split()

LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ru": "Russian",
                  "fr": "French", "es": "Spanish", "de": "German"}


@dataclass
class PromptFeatures:
    """What `analyze` found in a prompt.

    Attributes:
        words: the number of words (for Chinese, characters count as words).
        content_words: words that are not stopwords, vague words, quality tags or attributes.
        subject: a concrete subject was found (a content word or a place).
        setting: a setting or context was found (a place noun, or a preposition of place before a noun).
        attributes: each visual attribute found, as (text, category).
        quality_tags: tags like "masterpiece" or "8k" that give a painter nothing to use.
        request: the text reads as a question or an instruction, not a picture.
        repeated: the most repeated word and its count, when one word fills most of the prompt.
        language: the language the prompt seems to be written in ("en", "zh", ...).
    """

    words: int = 0
    content_words: list[str] = field(default_factory=list)
    subject: bool = False
    setting: bool = False
    attributes: list[tuple[str, str]] = field(default_factory=list)
    quality_tags: list[str] = field(default_factory=list)
    request: bool = False
    repeated: tuple[str, int] | None = None
    language: str = "en"

    @property
    def categories(self) -> list[str]:
        return sorted({category for _, category in self.attributes})


@dataclass
class QualityResult:
    """A prompt's score in 0..1 and one reason per line."""

    score: float
    reasons: list[str]
    features: PromptFeatures

    @property
    def reasons_text(self) -> str:
        return "\n".join(self.reasons)


def detect_language(text: str) -> str:
    """Guess the language of a prompt from its script, and a few common words for Latin-script languages."""
    han, kana, hangul = len(HAN.findall(text)), len(KANA.findall(text)), len(HANGUL.findall(text))
    cyrillic, latin = len(CYRILLIC.findall(text)), len(LATIN_LETTER.findall(text))
    if kana and kana + han > latin:
        return "ja"
    if hangul > latin:
        return "ko"
    if han > latin / 4:
        return "zh"
    if cyrillic > latin:
        return "ru"
    words = WORD_PATTERN.findall(text.lower())
    if len(words) >= 3:
        english = sum(1 for word in words if word in STOPWORDS)
        for name, vocabulary in FOREIGN_LATIN_WORDS.items():
            hits = sum(1 for word in words if word in vocabulary)
            if hits >= 2 and hits > english:
                return {"French": "fr", "Spanish": "es", "German": "de"}[name]
    return "en"


def analyze(prompt: str) -> PromptFeatures:
    """Find the subject, setting, visual attributes and problems of a prompt."""
    language = detect_language(prompt)
    if language == "zh":
        return _analyze_chinese(prompt)
    features = PromptFeatures(language=language)
    # Punctuation becomes a "," token: an attribute never runs across it.
    text = re.sub(r"[,;:.!?()\[\]{}|/\n]+", " , ", prompt.lower().replace("’", "'"))
    words = [word for word in (WORD_PATTERN.findall(piece) or [","] for piece in text.split()) for word in word]
    real_words = [word for word in words if word != ","]
    features.words = len(real_words)
    if not real_words:
        return features

    # 1. Label each word with an attribute category, phrases first; a run of adjacent
    #    labeled words (and modifiers such as "soft" or "deep") is one attribute.
    labels: list[str | None] = [None] * len(words)
    for phrase, category in ATTRIBUTE_PHRASES:
        phrase_words = WORD_PATTERN.findall(phrase)
        size = len(phrase_words)
        for start in range(len(words) - size + 1):
            if words[start:start + size] == phrase_words and not any(labels[start:start + size]):
                labels[start:start + size] = [category] * size
    for index, word in enumerate(words):
        if labels[index] is None and word in ATTRIBUTE_WORDS:
            labels[index] = ATTRIBUTE_WORDS[word]
    for index in reversed(range(len(words))):
        word = words[index]
        if labels[index] is None and word in ATTRIBUTE_MODIFIERS and index + 1 < len(words) and labels[index + 1]:
            labels[index] = "modifier"
    consumed = [label is not None for label in labels]
    spans: list[tuple[int, int]] = []  # the word range of each attribute
    index = 0
    while index < len(words):
        if labels[index] is None:
            index += 1
            continue
        end = index
        while end < len(words) and labels[end] is not None:
            end += 1
        categories = [label for label in labels[index:end] if label != "modifier"]
        if categories:
            features.attributes.append((" ".join(words[index:end]), Counter(categories).most_common(1)[0][0]))
            spans.append((index, end))
        index = end
    # 2. Quality tags, vague and abstract words, and the content words left.
    for index, word in enumerate(words):
        if consumed[index]:
            continue
        if word == ",":
            continue
        if word in QUALITY_TAGS:
            features.quality_tags.append(word)
        elif (word not in STOPWORDS and word not in PLACE_PREPOSITIONS and word not in VAGUE_WORDS
              and word not in ABSTRACT_WORDS and not word.isdigit()):
            features.content_words.append(word)

    # 3. Setting: a place noun, or a preposition of place before a content word.
    places = [word for index, word in enumerate(words) if word in SETTING_NOUNS and not consumed[index]]
    place_index = _preposition_of_place(words)
    features.setting = bool(places) or place_index is not None
    if place_index is not None and not places:
        # "a fox in the snow": the snow is the setting; it does not count as an attribute too.
        kept = [(attribute, span) for attribute, span in zip(features.attributes, spans)
                if not (span[0] <= place_index < span[1] and span[1] - span[0] == 1)]
        features.attributes = [attribute for attribute, _ in kept]
    features.subject = bool(features.content_words)

    # 4. Problems: requests, repetition.
    features.request = bool(REQUEST_START.match(prompt)) or prompt.strip().endswith("?")
    counts = Counter(real_words)
    word, count = counts.most_common(1)[0]
    if count >= 4 and count / len(real_words) > 0.4:
        features.repeated = (word, count)
        if len(set(features.content_words)) <= 1:
            features.setting = features.setting and len(set(real_words)) > 2
    return features


def _preposition_of_place(words: list[str]) -> int | None:
    """Return the index of the noun after a preposition of place ("on a wet street"), or None."""
    for index, word in enumerate(words[:-1]):
        if word not in PLACE_PREPOSITIONS or word == "from":
            continue
        for position in range(index + 1, min(index + 5, len(words))):
            following = words[position]
            if following in ("the", "a", "an", "its", "his", "her", "their", "some", "front", "of"):
                continue
            if following in WEATHER_PLACES:
                return position  # "in the snow", "in heavy rain"
            if following in ATTRIBUTE_WORDS and following not in NOT_A_PLACE:
                continue  # "on wet asphalt", "in a dark forest"
            if (following in NOT_A_PLACE or following in STOPWORDS or following in PLACE_PREPOSITIONS
                    or following in QUALITY_TAGS or following == ","):
                break
            if following not in VAGUE_WORDS and following not in ABSTRACT_WORDS:
                return position
            break
    return None


def _analyze_chinese(prompt: str) -> PromptFeatures:
    features = PromptFeatures(language="zh")
    characters = HAN.findall(prompt)
    features.words = len(characters)
    for category, markers in ZH_ATTRIBUTES.items():
        for marker in markers:
            if marker in prompt and not any(marker in found for found, _ in features.attributes):
                features.attributes.append((marker, category))
    features.setting = any(place in prompt for place in ZH_PLACES)
    features.subject = len(characters) >= 1
    features.content_words = characters
    return features


# --- the score -------------------------------------------------------------------------

FEATURE_NAMES = ("bias", "subject", "setting", "one_attribute", "two_attributes", "three_attributes",
                 "categories", "quality_tags", "request", "repeated", "rule_met")


def feature_vector(features: PromptFeatures) -> list[float]:
    """Return the numbers the logistic model weighs, in FEATURE_NAMES order."""
    attributes = len(features.attributes)
    return [
        1.0,
        float(features.subject),
        float(features.setting),
        float(attributes >= 1),
        float(attributes >= 2),
        float(attributes >= 3),
        min(len(features.categories), 4) / 4,
        min(len(features.quality_tags), 3) / 3,
        float(features.request),
        float(features.repeated is not None),
        float(features.subject and features.setting and attributes >= 2 and not features.request),
    ]


@lru_cache(maxsize=1)
def load_weights(path: str = str(WEIGHTS_FILE)) -> dict[str, Any]:
    """Read the fitted weights: {"text": [...], "embedding": {"weights": [...], "direction": [...]}}."""
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, value))))


def embedding_feature(vector: Sequence[float], direction: Sequence[float]) -> float | None:
    """Return the cosine of a vector with the weak-to-strong direction, or None when the sizes differ."""
    if len(vector) != len(direction) or not vector:
        return None
    dot = sum(a * b for a, b in zip(vector, direction))
    norm = math.sqrt(sum(a * a for a in vector)) * math.sqrt(sum(b * b for b in direction))
    return dot / norm if norm else 0.0


def score_prompt(prompt: str, *, embedding: Sequence[float] | None = None, target_language: str = "en",
                 weights: dict[str, Any] | None = None) -> QualityResult:
    """Score a prompt in 0..1 and explain the score, one reason per line.

    Args:
        prompt: the prompt to judge; empty or blank text scores 0.
        embedding: an all-MiniLM-L6-v2 vector of the prompt, for one more feature; other sizes are ignored.
        target_language: the language the image model reads; a prompt in another language scores below 0.6.
        weights: the fitted model (default: nodegraph/data/quality.json).
    """
    if not prompt or not prompt.strip():
        return QualityResult(0.0, ["empty prompt: nothing to draw"], PromptFeatures())
    weights = weights or load_weights()
    features = analyze(prompt)
    vector = feature_vector(features)

    # 1. The logistic model, with the embedding feature when an embedding of the right size came in.
    cosine = embedding_feature(embedding, weights["embedding"]["direction"]) if embedding is not None else None
    if cosine is not None:
        logit = sum(w * x for w, x in zip(weights["embedding"]["weights"], vector + [cosine]))
    else:
        logit = sum(w * x for w, x in zip(weights["text"], vector))
    score = _sigmoid(logit)

    # 2. A prompt the image model cannot read goes to the rewrite branch whatever its content.
    reasons = explain(features)
    target = (target_language or "en").lower().split("-")[0]
    if features.language != target:
        written = LANGUAGE_NAMES.get(features.language, features.language)
        wanted = LANGUAGE_NAMES.get(target, target)
        reasons.insert(0, f"written in {written}; the image model reads {wanted}")
        score = min(score, LANGUAGE_CAP)
    return QualityResult(round(score, 4), reasons, features)


def explain(features: PromptFeatures) -> list[str]:
    """Return one line per missing part of the rule, or one line saying what the prompt has."""
    reasons: list[str] = []
    if features.words < 4:
        reasons.append(f"too short: {features.words} word{'s' if features.words != 1 else ''}")
    if features.request:
        reasons.append("reads as a question or an instruction, not a description of a picture")
    if features.repeated is not None:
        word, count = features.repeated
        reasons.append(f"repeats {word!r} {count} times")
    if not features.subject:
        if features.quality_tags:
            reasons.append(f"no concrete subject: quality tags ({', '.join(sorted(set(features.quality_tags)))}) "
                           "say nothing a painter can draw")
        else:
            reasons.append("no concrete subject: name a thing, creature, person or place to draw")
    if not features.setting:
        reasons.append("no setting or background: say where the subject is")
    attributes = features.attributes
    if not attributes:
        reasons.append("no visual attributes: add at least two of light, color, composition, medium")
    elif len(attributes) == 1:
        text, category = attributes[0]
        reasons.append(f"only 1 visual attribute ({category}: {text}); add another, e.g. "
                       f"{'color or composition' if category == 'light' else 'light or composition'}")
    if not reasons:
        described = ", ".join(f"{category}" for category in features.categories)
        reasons.append(f"has a subject, a setting and {len(attributes)} visual attributes ({described})")
    return reasons


# --- the labeled set ----------------------------------------------------------------------


def heldout(prompt: str) -> bool:
    """Return whether a labeled prompt belongs to the held-out part: its sha1 ends in a hex digit 0-4."""
    return hashlib.sha1(prompt.encode("utf-8")).hexdigest()[-1] in "01234"


def read_labeled(path: Path) -> list[dict[str, Any]]:
    """Read a labeled prompt set: JSON lines, the first one the labeling rule."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if "prompt" in row:
                rows.append(row)
    return rows
