"""The URI forms a step may use, parsed without I/O: each storage's location, and the one
line that says what is wrong with the rest."""

from __future__ import annotations

import pytest

from prs_runner.step.uris import Location, UriError, parse_uri, uses_object_storage


@pytest.mark.parametrize(("uri", "location"), [
    ("./data/in", Location("", "", "./data/in")),
    ("/abs/in", Location("", "", "/abs/in")),
    ("file:///abs/in", Location("file", "", "/abs/in")),
    ("pvc://data", Location("pvc", "data", "")),
    ("pvc://data/in/digits", Location("pvc", "data", "in/digits")),
    ("s3://bucket", Location("s3", "bucket", "")),
    ("s3://bucket/", Location("s3", "bucket", "")),
    ("s3://bucket/in/", Location("s3", "bucket", "in")),
    ("s3://my.bucket-01/a/b.csv", Location("s3", "my.bucket-01", "a/b.csv")),
    ("s3://bucket/.hidden/x", Location("s3", "bucket", ".hidden/x")),
    ("gs://bucket/in", Location("gs", "bucket", "in")),
    ("az://container/in/x", Location("az", "container", "in/x")),
    ("abfs://data@acct01.dfs.core.windows.net/in",
     Location("abfs", "data", "in", "acct01")),
    ("abfss://data@acct01.blob.core.windows.net", Location("abfs", "data", "", "acct01")),
])
def test_locations(uri: str, location: Location) -> None:
    assert parse_uri(uri) == location


@pytest.mark.parametrize(("uri", "remote"), [
    ("./in", False), ("file:///in", False), ("pvc://c/in", False), ("s3://bkt/in", True),
    ("gs://bkt/in", True), ("az://bkt/in", True), ("abfs://bkt@acct.dfs.core.windows.net", True),
])
def test_remote(uri: str, remote: bool) -> None:
    assert parse_uri(uri).remote is remote


@pytest.mark.parametrize(("uri", "words"), [
    ("s4://bucket/in", "s4://bucket/in: unknown scheme s4://; use a path, file://, pvc://"),
    ("http://host/x", "unknown scheme http://"),
    ("S3://bucket/x", "unknown scheme S3://"),
    ("s3://Bucket/x", "s3://Bucket/x: 'Bucket' is not a bucket or container name"),
    ("s3://b_/x", "'b_' is not a bucket"),
    ("gs://ab", "'ab' is not a bucket"),
    ("gs:///x", "'' is not a bucket"),
    ("s3://-bucket/x", "'-bucket' is not a bucket"),
    ("s3://" + "b" * 64, "is not a bucket"),
    ("pvc:///x", "pvc:///x: the claim name is missing (pvc://CLAIM/path)"),
    ("abfs://container/x", "abfs://container/x: write abfs://CONTAINER@ACCOUNT.dfs.core"),
    ("abfs://c01@acct.example.com/x", "write abfs://CONTAINER@ACCOUNT"),
    ("abfs://c01@ACCT.dfs.core.windows.net/x", "write abfs://CONTAINER@ACCOUNT"),
    ("abfs://C01@acct.dfs.core.windows.net/x", "'C01' is not a container name"),
    ("s3://bucket//x", "a path segment is empty, '.' or '..'; write each folder once"),
    ("s3://bucket/x//", "a path segment is empty"),
    ("s3://bucket/./x", "a path segment is empty"),
    ("s3://bucket/x/..", "a path segment is empty"),
    ("pvc://data/../etc", "a path segment is empty"),
    ("abfs://c01@acct.dfs.core.windows.net/a/../b", "a path segment is empty"),
    ("gs://bucket/a\x00b", "a NUL character in the path"),
])
def test_errors_name_the_uri_and_the_form(uri: str, words: str) -> None:
    with pytest.raises(UriError) as raised:
        parse_uri(uri)
    assert words in str(raised.value)
    assert str(raised.value).startswith(uri)


@pytest.mark.parametrize(
    ("input_uri", "output_uri", "sides", "remote"),
    [
        ("./data", "/tmp/out", [], False),
        ("s3://bucket/data", "/tmp/out", [], True),
        ("./data", "gs://bucket/out", [], True),
        ("./data", "./out", ["./model", "az://account/container/model"], True),
        ("./data", "./out", ["./model"], False),
        ("./data", "./out", None, False),  # a spec before defaults: no sideInputs key
    ],
)
def test_a_step_uses_object_storage_when_any_of_its_uris_is_remote(
    input_uri: str, output_uri: str, sides: list[str] | None, remote: bool
) -> None:
    spec: dict[str, object] = {"input": {"uri": input_uri}, "output": {"uri": output_uri}}
    if sides is not None:
        spec["sideInputs"] = [{"name": f"s{i}", "uri": uri} for i, uri in enumerate(sides)]
    assert uses_object_storage(spec) is remote
