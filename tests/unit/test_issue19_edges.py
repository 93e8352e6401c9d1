"""Issue 19: a marker the server would ignore, secrets echoed in other encodings, the failure a redirect makes."""

from __future__ import annotations

import base64
import re
from urllib.parse import quote, quote_plus

import pytest

from comfykit_batch.errors import AuthError, BackendError, ConfigError, ParameterError
from comfykit_batch.executors.transport import Redactor
from comfykit_batch.result import Failure, failure_of
from comfykit_batch.workflow import Workflow

# -- a marker naming an input the server does not list ---------------------------------------------------

SIZE = {"width": ["INT", {"min": 1}], "height": ["INT", {"min": 1}], "batch_size": ["INT", {}], "color": ["INT", {}]}
INFO = {"EmptyImage": {"input": {"required": SIZE}}}


def _stale(title: str = "Size, $w.Width") -> Workflow:
    """An export whose node also carries a stale ``Width`` key, so the workflow alone cannot tell the typo."""
    return Workflow({"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "Width": 64, "height": 48, "batch_size": 1,
                                                                  "color": 0}, "_meta": {"title": title}}})


def test_a_marker_on_an_input_the_server_does_not_list_is_refused_naming_the_right_one():
    with pytest.raises(ParameterError) as err:
        _stale().check_server_inputs(INFO, "http://gpu1:8188")
    msg = str(err.value)
    assert "\n" not in msg
    assert "node 1 (EmptyImage)" in msg and "'$w.Width'" in msg and "http://gpu1:8188" in msg
    assert "(did you mean 'width'?)" in msg
    assert msg.endswith("inputs it lists: batch_size, color, height, width")


def test_the_suggestion_prefers_a_name_differing_only_in_case():
    info = {"EmptyImage": {"input": {"required": {**SIZE, "Widths": ["INT", {}]}}}}
    with pytest.raises(ParameterError, match=r"did you mean 'width'\?"):
        _stale().check_server_inputs(info)


def test_markers_on_listed_inputs_pass_required_or_optional():
    wf = Workflow({"1": {"class_type": "K", "inputs": {"a": 1, "b": 2}, "_meta": {"title": "$a, $b"}}})
    info = {"K": {"input": {"required": {"a": ["INT", {}]}, "optional": {"b": ["INT", {}]}}}}
    assert wf.check_server_inputs(info) == []


def test_a_class_the_server_does_not_describe_is_left_to_the_missing_nodes_check():
    assert _stale().check_server_inputs({}) == []
    assert _stale().check_server_inputs({"EmptyImage": "odd"}) == []


@pytest.mark.parametrize(("entry", "why"), [
    ({"input": {"required": {}, "optional": {}}}, "lists no required input"),
    ({"input": {"optional": {"width": ["INT", {}]}}}, "lists no required input"),
    ({"name": "EmptyImage"}, "lists no required input"),
    ({"input": {"required": {"values": ["COMFY_AUTOGROW_V3", {}], **SIZE}}}, "dynamic input (COMFY_AUTOGROW_V3)"),
    ({"input": {"required": {"mode": ["COMFY_DYNAMICCOMBO_V3", {}], **SIZE}}}, "dynamic input (COMFY_DYNAMICCOMBO_V3)"),
], ids=["empty", "optional-only", "no-inputs-section", "autogrow", "dynamic-combo"])
def test_a_partly_described_class_gives_a_warning_not_a_refusal(entry, why):
    warnings = _stale().check_server_inputs({"EmptyImage": entry})
    assert len(warnings) == 1 and why in warnings[0]
    assert "node 1 (EmptyImage)" in warnings[0] and "'$w.Width'" in warnings[0]


def test_a_numbered_input_beside_listed_ones_is_a_warning():
    """Nodes such as image-concat ones list ``image_1``, ``image_2``; the browser adds ``image_3``."""
    wf = Workflow({"1": {"class_type": "Concat", "inputs": {"inputcount": 3, "image_3": "x"},
                         "_meta": {"title": "$third.image_3"}}})
    info = {"Concat": {"input": {"required": {"inputcount": ["INT", {}], "image_1": ["IMAGE"], "image_2": ["IMAGE"]}}}}
    [warning] = wf.check_server_inputs(info)
    assert "numbered inputs like 'image_1'" in warning


def test_check_server_inputs_leaves_the_workflow_unchanged():
    wf = _stale("Size, $width")
    before = wf.fingerprint()
    assert wf.check_server_inputs(INFO) == []
    assert wf.fingerprint() == before


# -- secrets in other encodings ------------------------------------------------------------------------

KEY = "sk-live/Ab+c=d_0123456789xyz"


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), text)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


FORMS = {
    "literal": KEY,
    "json-escaped": KEY.replace("/", "\\/"),
    "quote": quote(KEY),
    "quote-safe-none": quote(KEY, safe=""),
    "quote_plus": quote_plus(KEY),
    "lower-hex": _lower_hex(quote(KEY, safe="")),
    "base64": _b64(KEY.encode()),
    "base64-unpadded": _b64(KEY.encode()).rstrip("="),
    "urlsafe": base64.urlsafe_b64encode(KEY.encode()).decode(),
    "urlsafe-unpadded": base64.urlsafe_b64encode(KEY.encode()).decode().rstrip("="),
    "base64-percent": quote(_b64(KEY.encode()), safe=""),
}


@pytest.mark.parametrize("form", FORMS.values(), ids=list(FORMS))
def test_every_plain_encoding_of_a_secret_is_scrubbed(form):
    assert KEY not in form or form == KEY
    scrubbed = Redactor([KEY])(f"echo: [{form}] end")
    assert scrubbed == "echo: [***] end"


@pytest.mark.parametrize("prefix", [b"", b"u", b"us", b"user:", b"Bearer ", b"session="])
def test_a_secret_inside_a_longer_base64_blob_is_scrubbed_at_any_alignment(prefix):
    """``Authorization: Basic base64(user:key)``, a cookie header in base64: the key's own characters go."""
    blob = _b64(prefix + KEY.encode() + b";more")
    scrubbed = Redactor([KEY])(blob)
    assert "***" in scrubbed
    kept = scrubbed.replace("***", "")
    assert len(kept) <= len(_b64(prefix)) + len(_b64(b";more")) + 4, "only the characters mixing in other bytes stay"
    for variant in (scrubbed, scrubbed.translate(str.maketrans("+/", "-_"))):
        assert _b64(KEY.encode())[:20] not in variant


def test_an_urlsafe_blob_holding_the_secret_is_scrubbed():
    blob = base64.urlsafe_b64encode(b"user:" + KEY.encode()).decode()
    assert "***" in Redactor([KEY])(blob)


def test_short_secrets_do_not_mangle_ordinary_text():
    text = "connection reset by peer; retry later"
    assert Redactor(["abc", "", None])(text) == text
    assert Redactor(["peer"])(text) == "connection reset by ***; retry later"


def test_a_failures_traceback_is_scrubbed_with_its_message():
    f = Failure("execution", f"node 3 raised ValueError: {quote(KEY)}", traceback=f"File x\nValueError: {_b64(KEY.encode())}")
    Redactor([KEY]).failure(f)
    assert f.message.endswith("ValueError: ***") and f.traceback is not None and f.traceback.endswith("ValueError: ***")


# -- what a backend error means for a job -------------------------------------------------------------------


def test_a_refused_or_redirected_request_is_an_auth_failure_and_final():
    f = failure_of(AuthError("http://h: GET /view: HTTP 302 (redirect to a login page: set api_key or cookies)"))
    assert (f.kind, f.transient) == ("auth", False)
    g = failure_of(BackendError("http://h: GET /view: HTTP 503", transient=True), "b: GET /view: HTTP 503")
    assert (g.kind, g.transient, g.message) == ("connection", True, "b: GET /view: HTTP 503")
    assert failure_of(ParameterError("x")).kind == "invalid" and failure_of(ConfigError("y")).kind == "config"
