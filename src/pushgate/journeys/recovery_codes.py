"""Recovery codes (spec forgerock-push.md §7, §8.4-§8.5). Pure.

Ten codes of ten characters from `0-9A-Za-z`, as AM makes them. Only a keyed digest is
stored: a code carries ~59 bits from a CSPRNG, so a fast hash bound to the user is enough
(no dictionary to guess from), and it lets the store use a code up in one compare-and-delete.

The display is the script AM's Recovery Code Display node sends: the JavaScript SDK and
FRCore on iOS find the codes with the regex `/\\s[\\w\\W]"([\\w]*)\\\\/g`, i.e. each code must
open a JS string literal right after indentation and be followed by a literal backslash-n,
and the device name sits inside `<em>…</em>`. No other line of the template may match.
"""

from __future__ import annotations

import hashlib
import html
import secrets
import string

COUNT = 10
LENGTH = 10
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
DEVICE_NAME = "Push Device"  # AM's recoveryCodeDeviceName for push
TITLE = "Your Recovery Codes"
WARNING = "You must make a copy of these recovery codes. They cannot be displayed again."
USE = "Use one of these codes to authenticate if you lose your device, which has been named:"


def new_codes() -> tuple[str, ...]:
    codes: set[str] = set()
    while len(codes) < COUNT:
        codes.add("".join(secrets.choice(ALPHABET) for _ in range(LENGTH)))
    return tuple(sorted(codes))


def is_code(text: str) -> bool:
    return len(text) == LENGTH and all(c in ALPHABET for c in text)


def digest(user_id: str, code: str) -> str:
    return hashlib.sha256(f"pushgate recovery code\0{user_id}\0{code}".encode()).hexdigest()


def _js(text: str) -> str:
    """Text safe inside a double-quoted JS string and as HTML."""
    return html.escape(text).replace("\\", "\\\\").replace('"', '\\"')


def display_script(codes: tuple[str, ...], device_name: str = DEVICE_NAME) -> str:
    lines = [
        'var newLocation = document.getElementById("wrapper");',
        'newLocation.getElementsByTagName("fieldset")[0].innerHTML =',
        '    "<div class=\\"panel\\">\\n" +',
        f'    "<h3>{_js(TITLE)}</h3>\\n" +',
        f'    "<h4>{_js(WARNING)}</h4>\\n" +',
        '    "<div class=\\"text-center\\">\\n" +',
        *(f'    "{code}\\n" +' for code in codes),
        '    "</div>\\n" +',
        f'    "<p>{_js(USE)} <em>{_js(device_name)}</em></p>\\n" +',
        '    "</div>";',
    ]
    return "\n".join(lines)
