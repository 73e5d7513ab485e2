"""`pushauth://` registration URIs: build (server) and parse (simulator) (spec §3, §11.2).

Parameter values are base64url without padding (Android decodes them URL-safe) and are not
percent-encoded; the label is `<issuer>:<account>` with only the label escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

from pushgate.protocol.encoding import b64url, b64url_decode

SCHEME = "pushauth"
DEFAULT_BACKGROUND = "032b75"


@dataclass(frozen=True, slots=True)
class RegistrationUri:
    issuer: str
    account: str
    secret: bytes = field(repr=False)
    challenge: bytes = field(repr=False)
    message_id: str
    register_url: str
    authenticate_url: str
    lb_cookie: str
    user_id: str | None = None
    device_profile_id: str | None = None
    background: str = DEFAULT_BACKGROUND

    def __str__(self) -> str:
        return build(self)


def push_endpoint(public_base: str, realm: str) -> str:
    """`<base>/json[/<realm>]/push/sns/message`, the path AM writes into QR codes (spec §3.4)."""
    realm_path = "" if realm == "/" else realm
    return f"{public_base}/json{realm_path}/push/sns/message"


def build(uri: RegistrationUri) -> str:
    if ":" in uri.issuer or ":" in uri.account:
        # iOS splits the label on every ':'; Android on the first one (spec §3.1).
        raise ValueError("issuer and account must not contain ':'")
    label = f"{quote(uri.issuer, safe='')}:{quote(uri.account, safe='@')}"
    params: list[tuple[str, str]] = [
        ("l", b64url(uri.lb_cookie.encode())),
        ("issuer", b64url(uri.issuer.encode())),
        ("m", uri.message_id),
        ("s", b64url(uri.secret)),
        ("c", b64url(uri.challenge)),
        ("r", b64url(uri.register_url.encode())),
        ("a", b64url(uri.authenticate_url.encode())),
    ]
    if uri.user_id:
        params.append(("uid", b64url(uri.user_id.encode())))
    if uri.device_profile_id:
        params.append(("pid", b64url(uri.device_profile_id.encode())))
    params.append(("b", uri.background))
    return f"{SCHEME}://push/{label}?" + "&".join(f"{k}={v}" for k, v in params)


def _text(value: str) -> str:
    return b64url_decode(value).decode("utf-8")


def parse(text: str) -> RegistrationUri:
    """Parse a registration URI the way the Android SDK does; raises ValueError."""
    parts = urlsplit(text)
    if parts.scheme != SCHEME or parts.netloc != "push":
        raise ValueError("not a pushauth://push/ URI")
    label = unquote(parts.path.lstrip("/"))
    label_issuer, sep, account = label.partition(":")
    if not sep:
        label_issuer, account = "", label
    params: dict[str, str] = {}
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        if key:
            params[key] = value
    missing = [k for k in ("s", "c", "r", "a", "m") if not params.get(k)]
    if missing:
        raise ValueError(f"missing parameters: {', '.join(missing)}")
    register_url = _text(params["r"])
    if "_action=register" not in register_url:
        raise ValueError("r does not contain _action=register")
    return RegistrationUri(
        issuer=_text(params["issuer"]) if params.get("issuer") else label_issuer,
        account=account,
        secret=b64url_decode(params["s"]),
        challenge=b64url_decode(params["c"]),
        message_id=params["m"],
        register_url=register_url,
        authenticate_url=_text(params["a"]),
        lb_cookie=_text(params["l"]) if params.get("l") else "",
        user_id=_text(params["uid"]) if params.get("uid") else None,
        device_profile_id=_text(params["pid"]) if params.get("pid") else None,
        background=params.get("b", DEFAULT_BACKGROUND),
    )
