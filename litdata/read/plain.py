"""A ShareGPT conversation with nothing wrong in it, recognised in one pass.

Reading runs alone on one core before encoding starts, so its cost adds to a compile's wall time one for one.
Checking turn by turn (a RawTurn per turn, then a text check, a blank check, a length check and a tag count per
turn, then the role order) was most of that cost. `plain_conversation` makes the same checks in one loop over
the turns plus a few calls in C over the whole record. It only ever accepts: anything it does not accept goes
through the step-by-step checks (sharegpt.parse_conversations, normalize._check_text, normalize._check_order),
which name the first problem exactly as before. tests/read/test_plain.py holds the two to the same answers.
"""

from __future__ import annotations

from litdata.read.turns import ROLES
from litdata.records import Role
from litdata.records.conversation import IMAGE_PLACEHOLDER

# Every byte but those of the C0 controls that text.text_problem refuses (all below 0x20 except tab, newline
# and carriage return). In UTF-8 a byte below 0x80 is always a whole ASCII character, so deleting these from
# a text's UTF-8 bytes leaves exactly its refused control characters.
_ALLOWED_BYTES = bytes(b for b in range(256) if b >= 0x20 or b in b"\t\n\r")
_USER, _ASSISTANT, _SYSTEM = Role.USER, Role.ASSISTANT, Role.SYSTEM


def plain_conversation(raw: list, max_turn_chars: int) -> tuple[list[Role], list[str], int] | None:
    """(roles, texts, number of image tags) when every turn of `raw` is an object with string 'from' and
    'value', names a known role, has clean non-blank text of at most max_turn_chars characters, and the roles
    are in order (an optional system turn, then user, assistant, ... ending with assistant); else None."""
    roles: list[Role] = []
    texts: list[str] = []
    for item in raw:
        if type(item) is not dict:
            return None
        said = item.get("from")
        text = item.get("value")
        if type(said) is not str or type(text) is not str:
            return None
        role = ROLES.get(said)  # the record's spelling is nearly always a key already ("human", "gpt")
        if role is None:
            role = ROLES.get(said.strip().lower())
            if role is None:
                return None
        roles.append(role)
        texts.append(text)
    if not _in_order(roles):
        return None
    if "" in texts or any(map(str.isspace, texts)):
        return None
    # "\n" is neither a refused character nor part of a tag, so the joined text has exactly the turns' bad
    # characters and tags; and no turn is longer than all of them together.
    joined = "\n".join(texts)
    if len(joined) > max_turn_chars and max(map(len, texts)) > max_turn_chars:
        return None
    try:
        encoded = joined.encode("utf-8")  # a lone surrogate cannot be encoded
    except UnicodeEncodeError:
        return None
    if encoded.translate(None, _ALLOWED_BYTES):
        return None
    return roles, texts, joined.count(IMAGE_PLACEHOLDER)


def _in_order(roles: list[Role]) -> bool:
    """normalize._check_order's rule: after an optional system turn, an even number of turns, users at the even
    places and assistants at the odd ones (counted in C, not turn by turn)."""
    first = 1 if roles and roles[0] is _SYSTEM else 0
    pairs, odd = divmod(len(roles) - first, 2)
    if odd or not pairs:
        return False
    return roles[first::2].count(_USER) == pairs and roles[first + 1 :: 2].count(_ASSISTANT) == pairs
