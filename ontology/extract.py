"""Caption text -> WordNet object synsets, without a tagger or any nltk data download.

Steps for each caption:
1. tokenise with a regex (lower-cased words; nothing to download);
2. match multi-word WordNet noun lemmas first, longest first ("hot dog", "fire hydrant", "teddy
   bear"), the last word lemmatised ("hot dogs" -> "hot dog"); of two overlapping matches the one
   ending later wins ("red fire hydrant" is a hydrant, not "red fire" + "hydrant");
3. lemmatise single words with WordNet's morphology (dogs -> dog, mice -> mouse);
4. keep a word only if one of its noun senses lies under `physical_entity.n.01`, and choose the
   most frequent such sense (WordNet lists senses by frequency; the chooser is pluggable);
5. drop stop words and layout nouns ("front", "side", "top", "view", "picture"...).

Words that are also verbs or adjectives: without a tagger, two context rules avoid most spurious
objects (their precision is measured in the README):
- *noun compounds keep their head*: in a run of noun candidates only the last is kept, so the
  modifier in "orange cat" or "kitchen table" is dropped while "cat" and "table" stay;
- *verbs after a subject*: a word used more often as a verb than as a noun (WordNet's SemCor
  sense counts), directly after a noun, a pronoun or an auxiliary ("a man stands", "he walks",
  "is sitting"), is read as a verb unless a determiner precedes it;
- *participles*: an "-ing" word whose noun use is rare (under a fifth of its verb's) is not an
  object unless a determiner precedes it ("a cat sleeping", "bear, sleeping" -> no "sleeping";
  "a tall building", "oil painting" keep theirs);
- *adjectives*: a word used more often as an adjective than as a noun ("red", "wooden") is never
  an object on its own.
Punctuation is a boundary: multi-word lemmas and compounds never cross a comma.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tonics.ontology.wordnet import load_wordnet

PHYSICAL_ENTITY = "physical_entity.n.01"
MAX_TOKENS = 256  # longer captions are cut here; a 10,000-character caption is not a sentence

LAYOUT_NOUNS = (
    "front",
    "side",
    "top",
    "bottom",
    "view",
    "picture",
    "image",
    "photo",
    "photograph",
    "shot",
    "close",
    "closeup",
    "background",
    "foreground",
    "left",
    "right",
    "middle",
    "center",
    "centre",
    "corner",
    "edge",
    "area",
    "lot",
    "couple",
    "group",
    "pair",
    "bunch",
    "variety",
    "piece",
    "part",
    "way",
    "scene",
    "sort",
    "kind",
    "type",
    "thing",
    "something",
    "stuff",
    "set",
    "line",
    "row",
    "number",
    "other",
    "end",
    "inside",
    "outside",
    "surface",
    "space",
    "place",
    "spot",
    "point",
    "stand",
    "display",
    "full",
    "clip",
    "art",
    "clipart",
    "illustration",
    "drawing",
    "icon",
    "symbol",
    "sign",
    "design",
    "cartoon",
    "vector",
    "simple",
    "style",
    "color",
    "colour",
    "clip_art",
    "emoji",
    "emoticon",
)
STOP_WORDS = frozenset(
    """a an the and or but of in on at to for with without from by as into onto over under above
    below near next beside behind between through across along around against about up down out
    off is are was were be been being am has have had do does did it its it's this that these those
    there here he she him her his hers they them their theirs we us our you your i me my mine who
    whom which
    what while where when why how very some any each every all both either neither no not one two
    three four five six seven eight nine ten many several few more most much other another such own
    same so than too can will just also only still then very well s t don should now""".split()
)
DETERMINERS = frozenset(
    """a an the this that these those his her its their our your my some any each every several
    many few two three four five six seven eight nine ten one no another""".split()
)
SUBJECT_WORDS = frozenset("he she it they who that which is are was were be been being".split())
_TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*|[,.;:!?()/|&]")
_BOUNDARY = frozenset(",.;:!?()/|&")
# Plurals WordNet's morphology leaves alone because they are also group nouns.
IRREGULAR_PLURALS = {"people": "person", "folks": "person"}

SenseChooser = Callable[[list], object]


def most_frequent_physical_sense(synsets: list):
    """The first (most frequent) sense among those already filtered to physical entities."""
    return synsets[0]


@dataclass(frozen=True)
class ExtractionSettings:
    """What counts as an object mention. Part of the ontology's cache key."""

    layout_nouns: tuple[str, ...] = LAYOUT_NOUNS
    max_multiword: int = 3  # longest multi-word lemma tried ("cell phone", "fire hydrant")
    head_only_compounds: bool = True
    verb_after_subject: bool = True
    extra_stop_words: tuple[str, ...] = field(default=())


class NounExtractor:
    """Turns captions into lists of WordNet synset names (e.g. 'dog.n.01'), with lookups cached."""

    def __init__(
        self,
        settings: ExtractionSettings | None = None,
        wordnet=None,
        choose_sense: SenseChooser = most_frequent_physical_sense,
    ) -> None:
        self.settings = settings or ExtractionSettings()
        self.wn = wordnet or load_wordnet()
        self.choose_sense = choose_sense
        self._physical = self.wn.synset(PHYSICAL_ENTITY)
        self._skip = (
            STOP_WORDS | set(self.settings.layout_nouns) | set(self.settings.extra_stop_words)
        )
        self._noun_cache: dict[str, str | None] = {}
        self._pos_cache: dict[str, str] = {}
        self._participle_cache: dict[str, bool] = {}
        self._multiword_cache: dict[tuple[str, ...], tuple[str, int] | None] = {}
        self._physical_cache: dict[str, bool] = {}
        self._multiword_firsts = self._first_words_of_multiword_lemmas()

    def _first_words_of_multiword_lemmas(self) -> frozenset[str]:
        firsts = set()
        for lemma in self.wn.all_lemma_names("n"):
            if "_" in lemma and lemma.count("_") < self.settings.max_multiword:
                firsts.add(lemma.split("_", 1)[0])
        return frozenset(firsts)

    def _is_physical(self, synset) -> bool:
        name = synset.name()
        known = self._physical_cache.get(name)
        if known is None:
            known = any(self._physical in path for path in synset.hypernym_paths())
            self._physical_cache[name] = known
        return known

    def object_synset(self, phrase: str) -> str | None:
        """Synset name for a word or multi-word phrase ('hot dogs' -> 'hotdog.n.02'), or None."""
        cached = self._noun_cache.get(phrase, False)
        if cached is not False:
            return cached
        result = None
        words = phrase.replace("-", " ").split()
        if words and phrase not in self._skip:
            lemma = self.wn.morphy("_".join(words), "n")
            if lemma is None and len(words) > 1:
                last = self.wn.morphy(words[-1], "n")
                lemma = "_".join(words[:-1] + [last]) if last else None
            if lemma is not None and lemma not in self._skip:
                senses = [s for s in self.wn.synsets(lemma, "n") if self._is_physical(s)]
                if senses:
                    result = self.choose_sense(senses).name()
        self._noun_cache[phrase] = result
        return result

    def _sense_count(self, word: str, pos: str) -> int:
        lemma = self.wn.morphy(word, pos)
        if lemma is None:
            return 0
        return sum(
            le.count()
            for s in self.wn.synsets(lemma, pos)
            for le in s.lemmas()
            if le.name().lower() == lemma
        )

    def _mostly_participle(self, word: str) -> bool:
        """An -ing word whose noun use is rare next to its verb's ("sleeping"; not "building")."""
        known = self._participle_cache.get(word)
        if known is None:
            known = 5 * self._sense_count(word, "n") < self._sense_count(word, "v")
            self._participle_cache[word] = known
        return known

    def _usual_pos(self, word: str) -> str:
        """'v' or 'a' when WordNet's sense counts say the word is mostly a verb or an adjective,
        else 'n'."""
        known = self._pos_cache.get(word)
        if known is None:
            noun = self._sense_count(word, "n")
            verb = self._sense_count(word, "v")
            adjective = max(self._sense_count(word, "a"), self._sense_count(word, "s"))
            known = "v" if verb > max(noun, adjective) else "a" if adjective > noun else "n"
            self._pos_cache[word] = known
        return known

    def _multiword_at(self, tokens: list[str], i: int) -> tuple[str, int] | None:
        if tokens[i] not in self._multiword_firsts:
            return None
        window = tuple(tokens[i : i + self.settings.max_multiword])
        if window in self._multiword_cache:
            return self._multiword_cache[window]
        found = None
        for size in range(len(window), 1, -1):
            if any(t in _BOUNDARY for t in window[:size]):
                continue
            synset = self.object_synset(" ".join(window[:size]))
            if synset is not None:
                found = (synset, size)
                break
        self._multiword_cache[window] = found
        return found

    def _overlapped_by_later_match(self, tokens: list[str], start: int, end: int) -> bool:
        for k in range(start + 1, end):
            later = self._multiword_at(tokens, k)
            if later is not None and k + later[1] > end:
                return True
        return False

    def candidates(self, caption: str) -> list[tuple[int, int, str]]:
        """(start token, end token, synset) for every object mention, before compound heads."""
        tokens = _TOKEN.findall(caption.lower())[:MAX_TOKENS]
        found: list[tuple[int, int, str]] = []
        i = 0
        while i < len(tokens):
            multi = self._multiword_at(tokens, i)
            if multi is not None and self._overlapped_by_later_match(tokens, i, i + multi[1]):
                multi = None  # "red fire hydrant": the head-final reading wins over "red fire"
            if multi is not None:
                found.append((i, i + multi[1], multi[0]))
                i += multi[1]
                continue
            word = IRREGULAR_PLURALS.get(tokens[i], tokens[i])
            synset = None if word in self._skip or len(word) < 2 else self.object_synset(word)
            if synset is not None and not self._reads_as_non_noun(tokens, i, found):
                found.append((i, i + 1, synset))
            i += 1
        return found

    def _reads_as_non_noun(self, tokens: list[str], i: int, found: list) -> bool:
        usual = self._usual_pos(tokens[i])
        if usual == "a":
            return True
        if usual != "v" or not self.settings.verb_after_subject:
            return False
        previous = tokens[i - 1] if i else ""
        if (
            tokens[i].endswith("ing")
            and previous not in DETERMINERS
            and self._mostly_participle(tokens[i])
        ):
            return True  # "sleeping", "running": a participle, not an object, unless "a sleeping"
        if i == 0:
            return False
        if previous in DETERMINERS:
            return False
        after_noun = bool(found) and found[-1][1] == i
        return after_noun or previous in SUBJECT_WORDS

    def extract(self, caption: object) -> list[str]:
        """Distinct object synset names in order of mention; [] for empty or non-text input."""
        if isinstance(caption, bytes):
            caption = caption.decode("utf-8", errors="replace")
        if not isinstance(caption, str) or not caption.strip():
            return []
        mentions = self.candidates(caption)
        if self.settings.head_only_compounds:
            mentions = [
                m
                for k, m in enumerate(mentions)
                if k + 1 == len(mentions) or mentions[k + 1][0] != m[1]
            ]
        seen: dict[str, None] = {}
        for _, _, synset in mentions:
            seen.setdefault(synset, None)
        return list(seen)
