import base64

import pytest

from comfykit_batch.errors import ParameterError
from comfykit_batch.uploads import classify

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 10


def test_local_path(tmp_path):
    p = tmp_path / "cat.png"
    p.write_bytes(PNG)
    s = classify(str(p), "img")
    assert s.kind == "path" and s.path == p and s.filename == "cat.png"


def test_missing_explicit_path_is_an_error(tmp_path):
    with pytest.raises(ParameterError, match="no such file"):
        classify(str(tmp_path / "nope.png"), "img")


def test_url_description_hides_query_tokens():
    s = classify("https://cdn.example/a/cat.png?X-Signature=secret", "img")
    assert s.kind == "url" and s.filename == "cat.png"
    assert "secret" not in s.describe()


def test_bytes_and_data_uri():
    assert classify(PNG, "img").filename == "img.png"
    uri = "data:image/png;base64," + base64.b64encode(PNG).decode()
    s = classify(uri, "img")
    assert s.kind == "bytes" and s.data == PNG and s.filename.endswith(".png")


def test_bare_name_is_a_server_file():
    s = classify("already_there.png", "img")
    assert s.kind == "server" and s.filename == "already_there.png"


def test_wrong_type():
    with pytest.raises(ParameterError, match="is an upload"):
        classify(12, "img")


@pytest.mark.parametrize(
    "url, shown",
    [
        ("https://cdn.example/a/cat.png?sig=SECRET&token=SECRET", "https://cdn.example/a/cat.png?…"),
        ("https://user:SECRET@cdn.example:8443/x.json#SECRET", "https://cdn.example:8443/x.json"),
        ("http://[::1]:8188/view?token=SECRET", "http://[::1]:8188/view?…"),
        ("http://host.example/plain.json", "http://host.example/plain.json"),
        ("http://host.example:notaport/x?token=SECRET", "<unparseable URL>"),
    ],
)
def test_redact_url_keeps_scheme_host_and_path_only(url, shown):
    from comfykit_batch.uploads import redact_url

    assert redact_url(url) == shown


def test_an_upload_sources_repr_never_shows_its_url_or_bytes():
    s = classify("https://cdn.example/a/cat.png?X-Signature=SECRET", "img")
    assert "SECRET" not in repr(s) and "SECRET" not in str(s)
    assert s.url.endswith("SECRET"), "the download itself still needs the signed URL"
    assert "0000000000" not in repr(classify(PNG, "img"))


def test_urls_in_text_lose_their_credentials_and_query():
    from comfykit_batch.uploads import redact_url, redact_urls_in_text

    text = "url: http://u:pw@h:1/p?sig=S#f out: s3://bucket/x?t=1 and plain C:/path local"
    assert redact_urls_in_text(text) == "url: http://h:1/p?… out: s3://bucket/x?… and plain C:/path local"
    assert redact_urls_in_text(text, query_mark="") == "url: http://h:1/p out: s3://bucket/x and plain C:/path local"
    assert redact_url("http://u:pw@h:1/p?sig=S", query_mark="") == "http://h:1/p"
    assert [redact_url(v) for v in ("local", "webapp:123", "C:/Path")] == ["local", "webapp:123", "C:/Path"]
