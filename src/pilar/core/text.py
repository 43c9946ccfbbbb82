"""Name normalisation used for search and for the possible-duplicate check.

Spanish names vary in accents, case and spacing between records of the same person; search must
find "Núñez" from "nunez". Normalised text keeps Ñ distinct from N in the display value but folds
it for matching, as clerks type N on keyboards without Ñ.
"""

from __future__ import annotations

import functools
import re
import unicodedata

_SPACES = re.compile(r"\s+")
_NOT_NAME = re.compile(r"[^A-Z0-9 ]")


# Names repeat a great deal (a few thousand given names and surnames cover most people), so the
# seeder and bulk imports fold the same strings millions of times.
@functools.lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Upper-case ASCII, no accents or punctuation, single-spaced: 'Núñez-Peña' → 'NUNEZ PENA'."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    upper = stripped.upper().replace("-", " ").replace("'", "")
    return _SPACES.sub(" ", _NOT_NAME.sub(" ", upper)).strip()


def clean_name(text: str) -> str:
    """The display form of a name: trimmed, single-spaced, otherwise as the person writes it."""
    return _SPACES.sub(" ", text).strip()


def normalized_full_name(given_names: str, paternal_surname: str, maternal_surname: str) -> str:
    """The sort and match key: 'PATERNAL MATERNAL GIVEN', folded."""
    return " ".join(
        part for part in (fold(paternal_surname), fold(maternal_surname), fold(given_names)) if part
    )


def search_terms(query: str) -> list[str]:
    """Folded words of a free-text name query, longest first (the most selective term first)."""
    return sorted({term for term in fold(query).split(" ") if term}, key=len, reverse=True)
