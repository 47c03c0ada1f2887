"""``core.redaction``: URLs shown without their credentials, pure and on literal values."""

from __future__ import annotations

import pytest

from core.redaction import (
    REDACTED,
    is_secret_parameter,
    lost_secrets,
    redacted,
    redacted_url,
    shown_value,
    storable,
    stored_url,
    with_urls_redacted,
    without_url_secrets,
)

R = REDACTED


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # the reported one: userinfo and an S3 SigV4 presigned query
        (
            "http://user:pass@host/path?X-Amz-Signature=abc&X-Amz-Credential=AKIA%2F1",
            f"http://host/path?X-Amz-Signature={R}&X-Amz-Credential={R}",
        ),
        # S3 SigV4 in full, other parameters kept in place
        (
            "https://b.s3.amazonaws.com/u/1/images.zip?versionId=7&X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
            "&X-Amz-Security-Token=FwoG&X-Amz-Signature=deadbeef",
            f"https://b.s3.amazonaws.com/u/1/images.zip?versionId=7&X-Amz-Algorithm={R}"
            f"&X-Amz-Date={R}&X-Amz-Expires={R}&X-Amz-SignedHeaders={R}"
            f"&X-Amz-Security-Token={R}&X-Amz-Signature={R}",
        ),
        # S3 SigV2 and GCS V2
        (
            "https://b.s3.amazonaws.com/k?AWSAccessKeyId=AKIA&Expires=1700000000&Signature=x%2B",
            f"https://b.s3.amazonaws.com/k?AWSAccessKeyId={R}&Expires=1700000000&Signature={R}",
        ),
        (
            "https://storage.googleapis.com/b/o?GoogleAccessId=sa@p.iam&Expires=1&Signature=s",
            f"https://storage.googleapis.com/b/o?GoogleAccessId={R}&Expires=1&Signature={R}",
        ),
        # GCS V4, any case
        (
            "https://storage.googleapis.com/b/o?x-goog-algorithm=GOOG4&X-GOOG-CREDENTIAL=sa%2F"
            "&x-goog-signature=ff&alt=media",
            f"https://storage.googleapis.com/b/o?x-goog-algorithm={R}&X-GOOG-CREDENTIAL={R}"
            f"&x-goog-signature={R}&alt=media",
        ),
        # Azure SAS (service and user delegation)
        (
            "https://a.blob.core.windows.net/c/z.zip?sv=2022-11-02&ss=b&srt=o&sp=r"
            "&se=2026-01-01T00:00:00Z&st=2025-01-01&spr=https&skoid=o&sktid=t&sig=abc%3D",
            f"https://a.blob.core.windows.net/c/z.zip?sv={R}&ss={R}&srt={R}&sp={R}"
            f"&se={R}&st={R}&spr={R}&skoid={R}&sktid={R}&sig={R}",
        ),
        # CloudFront signed URL
        (
            "https://d1.cloudfront.net/i.png?Expires=1&Signature=s~&Key-Pair-Id=K2&Policy=eyJ",
            f"https://d1.cloudfront.net/i.png?Expires=1&Signature={R}&Key-Pair-Id={R}&Policy={R}",
        ),
        # tokens in the query or the fragment
        (
            "https://cdn.example/w.safetensors?token=t1&access_token=t2&download=1#id_token=t3&x=1",
            f"https://cdn.example/w.safetensors?token={R}&access_token={R}&download=1"
            f"#id_token={R}&x=1",
        ),
        # a password holding "@", userinfo without a password
        ("https://u:p@ss@host:8443/x", "https://host:8443/x"),
        ("ftp://anonymous@files.example/f", "ftp://files.example/f"),
        # nothing to hide: as it was
        ("https://replicate.delivery/pbxt/abc/trained_model.tar", None),
        ("https://host/p?a=1&b=&c&page=2#top", None),
        ("not a url at all", None),
        ("", None),
    ],
)
def test_urls_are_shown_without_their_secrets(url: str, shown: str | None) -> None:
    assert redacted_url(url) == (url if shown is None else shown)
    assert redacted_url(redacted_url(url)) == redacted_url(url)  # showing it again: the same


def test_a_parameter_name_is_compared_decoded_and_in_any_case() -> None:
    assert is_secret_parameter("X-Amz-Signature") and is_secret_parameter("x%2Damz%2Dsignature")
    assert is_secret_parameter("SIG") and is_secret_parameter("hf_token")
    assert not is_secret_parameter("versionId") and not is_secret_parameter("alt")


def test_urls_inside_text_and_values_are_redacted() -> None:
    message = "the photos at https://u:p@h/z.zip?sig=s&n=1 could not be read: 'http://x/?token=t'"
    assert with_urls_redacted(message) == (
        f"the photos at https://h/z.zip?sig={R}&n=1 could not be read: 'http://x/?token={R}'"
    )
    nested = {"input_images": "https://h/z?X-Amz-Signature=s", "steps": 1000, "l": ["s3://k@b/o"]}
    assert without_url_secrets(nested) == {
        "input_images": f"https://h/z?X-Amz-Signature={R}",
        "steps": 1000,
        "l": ["s3://b/o"],
    }


def test_inputs_are_shown_with_secrets_redacted_by_key_and_in_urls() -> None:
    training_input = {
        "hf_token": "hf_abc",
        "input_images": "http://user:pass@host/path?X-Amz-Signature=s&X-Amz-Credential=c",
        "trigger_word": "user5040",
    }
    # By key (what evidence stores), then the URLs too (what a table shows).
    assert redacted(training_input)["input_images"] == training_input["input_images"]
    assert without_url_secrets(redacted(training_input)) == {
        "hf_token": R,
        "input_images": f"http://host/path?X-Amz-Signature={R}&X-Amz-Credential={R}",
        "trigger_word": "user5040",
    }
    assert shown_value("steps", 1000) == 1000 and shown_value("wandb_api_key", "k") == R


def test_stored_urls_keep_no_secret_and_say_they_lost_one() -> None:
    signed = "https://bucket.s3.amazonaws.com/z.zip?X-Amz-Signature=abc&X-Amz-Credential=k"
    login = "https://user:pass@blob.example.com/z.zip"
    kept = stored_url(signed)
    assert kept == (
        "https://bucket.s3.amazonaws.com/z.zip?X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]"
    )
    assert stored_url(login) == "https://[redacted]@blob.example.com/z.zip"
    assert lost_secrets(kept) and lost_secrets(stored_url(login))
    assert stored_url(kept) == kept  # storing a stored URL changes nothing
    delivery = "https://replicate.delivery/xezq/abc/trained_model.tar"
    assert stored_url(delivery) == delivery and not lost_secrets(delivery)
    value = {"input_images": signed, "notes": [f"see {login} now", 3], "steps": 1400}
    assert storable(value) == {
        "input_images": kept,
        "notes": ["see https://[redacted]@blob.example.com/z.zip now", 3],
        "steps": 1400,
    }
