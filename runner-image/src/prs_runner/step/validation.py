"""The API server's rules for a ParallelRunStep, applied offline (`prs validate`).

Every message starts with the field path, so the same table of bad specs can be checked
against this module and against the CRD's OpenAPI schema and CEL rules.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from prs_runner.step.argument_bindings import binding_problems
from prs_runner.step.azure_arguments import argument_problems
from prs_runner.step.field_names import field_placements, suggestion
from prs_runner.step.globs import GlobError, glob_to_regex
from prs_runner.step.spec import (
    API_VERSION,
    CODE_SOURCES,
    DEFAULTS,
    ENUMS,
    ENV_NAME_PATTERN,
    FORBIDDEN_FILE_NAME_CHARS,
    KIND,
    MAXIMUMS,
    MINI_BATCH_SIZE_PATTERN,
    MINIMUMS,
    NAME_PATTERN,
    PARTITION_FORMAT_PATTERN,
    POD_TEMPLATE_KEYS,
    RESERVED_ENV_PREFIX,
    RESERVED_FILE_NAMES,
    SCALAR_FIELDS,
    SECTIONS,
    SIDE_INPUT_NAME_PATTERN,
    SideInput,
    SpecError,
    Step,
    apply_defaults,
    drop_nulls,
    lookup,
)
from prs_runner.step.uris import UriError, parse_uri
from prs_runner.step.yaml_values import apply_overrides, load_yaml

TOP_LEVEL_FIELDS = {*DEFAULTS, *SECTIONS, "miniBatchSize"}
PLACEMENTS = field_placements(TOP_LEVEL_FIELDS, SECTIONS)


def load_step(
    path: str | Path, overrides: tuple[str, ...] | list[str] = (), output_uri: str | None = None
) -> Step:
    """Read a step YAML, apply `--set` overrides and validate; paths resolve next to the file."""
    path = Path(path)
    try:
        document = load_yaml(path.read_text())
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except (UnicodeDecodeError, IsADirectoryError) as error:
        raise SpecError([f"{path}: not a YAML text file ({error})"]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise SpecError([f"{path}:{where} not valid YAML: {problem}"]) from None
    if not isinstance(document, dict):
        raise SpecError([f"{path}: expected a ParallelRunStep mapping"])
    spec = document.get("spec")
    if isinstance(spec, dict):
        spec = apply_overrides(spec, overrides)
        if output_uri is not None:
            spec.setdefault("output", {})["uri"] = output_uri
        document = {**document, "spec": spec}
    return step_from_document(document, base_dir=path.parent.resolve())


def step_from_document(document: Mapping[str, Any], base_dir: Path = Path(".")) -> Step:
    problems = validate_document(document)
    if problems:
        raise SpecError(problems)
    metadata = document["metadata"]
    return Step(
        name=metadata["name"],
        namespace=metadata.get("namespace") or "default",
        spec=apply_defaults(document["spec"]),
        base_dir=base_dir,
        metadata=dict(metadata),
    )


def validate_document(document: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if document.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: must be {API_VERSION} (got {document.get('apiVersion')!r})")
    if document.get("kind") != KIND:
        problems.append(f"kind: must be {KIND} (got {document.get('kind')!r})")
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or not 3 <= len(name) <= 48:
        problems.append(
            "metadata.name: must be a DNS-1123 label of 3-48 characters "
            f"(lower-case letters, digits, '-', starting with a letter) (got {name!r})"
        )
    spec = document.get("spec")
    if not isinstance(spec, Mapping):
        return [*problems, "spec: required"]
    return problems + validate_spec(spec)


def validate_spec(raw: Mapping[str, Any]) -> list[str]:
    """Every problem at once: a wrong shape does not hide a wrong value elsewhere (a section
    that is missing or not an object reports that alone, not what it lacks)."""
    problems = check_shape(raw)
    broken = [f"spec.{s}" for s in SECTIONS if not isinstance(raw.get(s), Mapping)]
    spec = apply_defaults(known_part(raw))
    problems += argument_problems(drop_nulls(known_part(raw)), DEFAULTS)
    problems += check_bindings(spec)
    for check in (check_types, check_enums, check_ranges, check_code, check_input, check_output,
                  check_uris):
        problems += [p for p in check(spec)
                     if not any(p.startswith((f"{b}.", f"{b}:")) for b in broken)]
    return problems


def known_part(raw: Mapping[str, Any]) -> dict[str, Any]:
    """RAW without its unknown fields, each section an object (empty when it is not one)."""
    known: dict[str, Any] = {k: v for k, v in raw.items() if k in TOP_LEVEL_FIELDS}
    for section, allowed in SECTIONS.items():
        value = raw.get(section)
        known[section] = ({k: v for k, v in value.items() if k in allowed}
                          if isinstance(value, Mapping) else {})
    return known


def check_bindings(spec: Mapping[str, Any]) -> list[str]:
    arguments, sides = spec.get("arguments"), spec.get("sideInputs")
    if not isinstance(arguments, list) or not all(isinstance(a, str) for a in arguments):
        return []  # check_types reports it
    names = [str(s.get("name")) for s in sides if isinstance(s, Mapping)] if isinstance(
        sides, list) else []
    return binding_problems(arguments, names)


MAX_URI_LENGTH = 2048  # the CRD's maxLength: CEL's cost budget needs a bound
MAX_PARTITION_KEYS = 32  # the CRD's maxItems, for the same reason
MAX_SIDE_INPUTS = 64


def check_uris(spec: Mapping[str, Any]) -> list[str]:
    """Every URI in a form some storage takes (a typo in the scheme is caught here, before
    any pod starts)."""
    places = [("spec.input.uri", spec["input"].get("uri")),
              ("spec.output.uri", spec["output"].get("uri"))]
    places += [(f"spec.sideInputs[{index}].uri", item.get("uri"))
               for index, item in enumerate(spec.get("sideInputs") or [])
               if isinstance(item, Mapping)]
    problems = []
    if len(places) - 2 > MAX_SIDE_INPUTS:
        problems.append(f"spec.sideInputs: at most {MAX_SIDE_INPUTS} side inputs")
    for field, uri in places:
        if isinstance(uri, str) and len(uri) > MAX_URI_LENGTH:
            problems.append(f"{field}: longer than {MAX_URI_LENGTH} characters")
        elif isinstance(uri, str) and uri:
            try:
                parse_uri(uri)
            except UriError as error:
                problems.append(f"{field}: {error}")
    return problems


def check_shape(raw: Mapping[str, Any]) -> list[str]:
    problems = [
        f"spec.{key}: unknown field{suggestion(str(key), TOP_LEVEL_FIELDS, '', PLACEMENTS)}"
        for key in raw if key not in TOP_LEVEL_FIELDS]
    for section, allowed in SECTIONS.items():
        value = raw.get(section)
        if value is None:
            problems.append(f"spec.{section}: required")
        elif not isinstance(value, Mapping):
            problems.append(f"spec.{section}: must be an object")
        else:
            problems += [
                f"spec.{section}.{k}: unknown field"
                f"{suggestion(str(k), allowed, section, PLACEMENTS)}"
                for k in value if k not in allowed]
    return problems


def type_problem(path: str, kind: str, value: Any) -> str | None:
    if value is None:
        return None
    ok = {
        "str": isinstance(value, str),
        "size": isinstance(value, str | int) and not isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
    }[kind]
    words = {"str": "a string", "size": "a string", "int": "an integer",
             "number": "a number", "bool": "true or false"}
    return None if ok else f"spec.{path}: must be {words[kind]} (got {value!r})"


def check_types(spec: Mapping[str, Any]) -> list[str]:
    problems = [type_problem(p, k, lookup(spec, p)) for p, k in SCALAR_FIELDS.items()]
    for path in ("arguments", "env", "sideInputs"):
        if not isinstance(spec.get(path), list):
            problems.append(f"spec.{path}: must be a list")
    if any(not isinstance(a, str) for a in spec.get("arguments") or []):
        problems.append("spec.arguments: every argument must be a string (quote numbers)")
    for path in ("resources", "podTemplate"):
        if not isinstance(spec.get(path), Mapping):
            problems.append(f"spec.{path}: must be an object")
    template = spec.get("podTemplate")
    if isinstance(template, Mapping):
        problems += [f"spec.podTemplate.{key}: unknown field (known: "
                     f"{', '.join(POD_TEMPLATE_KEYS)})"
                     for key in template if key not in POD_TEMPLATE_KEYS]
        problems += check_reserved_env(template.get("env"), "podTemplate.env")
    return [p for p in problems if p]


def check_enums(spec: Mapping[str, Any]) -> list[str]:
    problems = []
    for path, allowed in ENUMS.items():
        value = lookup(spec, path)
        if value is not None and value not in allowed:
            problems.append(f"spec.{path}: must be one of {', '.join(allowed)} (got {value!r})")
    return problems


def check_ranges(spec: Mapping[str, Any]) -> list[str]:
    problems = []
    for path, minimum in MINIMUMS.items():
        value = spec.get(path)
        if isinstance(value, int) and not isinstance(value, bool) and value < minimum:
            problems.append(f"spec.{path}: must be >= {minimum} (got {value})")
    for path, maximum in MAXIMUMS.items():
        value = spec.get(path)
        if isinstance(value, int) and not isinstance(value, bool) and value > maximum:
            problems.append(f"spec.{path}: must be <= {maximum} (got {value})")
    percent = spec.get("allowedFailedPercent")
    if (
        isinstance(percent, int | float)
        and not isinstance(percent, bool)
        and not 0 <= percent <= 100
    ):
        problems.append(f"spec.allowedFailedPercent: must be within 0-100 (got {percent})")
    size = spec.get("miniBatchSize")
    if isinstance(size, str) and not MINI_BATCH_SIZE_PATTERN.fullmatch(size):
        problems.append(
            "spec.miniBatchSize: must be a count (\"10\"), bytes (\"512KB\", \"1MB\", \"1GB\") "
            f"or rows (\"5000rows\") (got {size!r})"
        )
    elif isinstance(size, str) and lookup(spec, "input.type") == "files" and not size.isdigit():
        problems.append(f"spec.miniBatchSize: files input takes a count of files (got {size!r})")
    name = spec.get("appendRowFileName")
    if isinstance(name, str) and (not name or FORBIDDEN_FILE_NAME_CHARS & set(name)):
        problems.append(
            "spec.appendRowFileName: must be a non-empty file name without path separators "
            f"or any of ~\"#%&*:<>?/\\{{|}}` (got {name!r})"
        )
    elif name in RESERVED_FILE_NAMES:
        problems.append(
            f"spec.appendRowFileName: {name!r} is not a file name in the output folder; "
            "use a plain file name such as parallel_run_step.txt"
        )
    return problems


def check_code(spec: Mapping[str, Any]) -> list[str]:
    code = spec["code"]
    problems = []
    script = code.get("entryScript")
    if not script:
        problems.append("spec.code.entryScript: required")
    elif isinstance(script, str) and not inside_its_root(script):
        problems.append(
            "spec.code.entryScript: must be a path inside the code folder (relative, no '..' "
            f"part, no NUL) (got {script!r})"
        )
    sources = [s for s in CODE_SOURCES if code.get(s)]
    if len(sources) != 1:
        problems.append(
            "spec.code: exactly one of sourceDirectory, configMap, path must be set "
            f"(got {', '.join(sources) or 'none'})"
        )
    return problems


def check_input(spec: Mapping[str, Any]) -> list[str]:
    data = spec["input"]
    problems = []
    for key in ("type", "uri"):
        if not data.get(key):
            problems.append(f"spec.input.{key}: required")
    if data.get("type") != "tabular" and "format" in data:
        problems.append("spec.input.format: allowed only with input.type tabular")
    partition_format = data.get("partitionFormat")
    if partition_format is not None and not data.get("partitionKeys"):
        problems.append("spec.input.partitionFormat: needs input.partitionKeys (the keys it "
                        "names that make the mini-batches)")
    if isinstance(partition_format, str) and not PARTITION_FORMAT_PATTERN.fullmatch(
            partition_format):
        problems.append("spec.input.partitionFormat: literal text and {Name} placeholders, "
                        f"as in \"{{Store}}/{{Brand}}/*.csv\" (got {partition_format!r})")
    glob = data.get("glob")
    if isinstance(glob, str):
        try:
            glob_to_regex(glob)
        except GlobError as error:
            problems.append(f"spec.input.glob: {error}")
    keys = data.get("partitionKeys")
    if keys is not None and (
        not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys)
    ):
        problems.append("spec.input.partitionKeys: must be a list of column names")
    elif keys is not None and len(keys) > MAX_PARTITION_KEYS:
        problems.append(f"spec.input.partitionKeys: at most {MAX_PARTITION_KEYS} keys")
    elif keys is not None and len(set(keys)) < len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        problems.append(f"spec.input.partitionKeys: {', '.join(twice)} given twice; name each "
                        "key once")
    return problems


def check_output(spec: Mapping[str, Any]) -> list[str]:
    problems = []
    if not spec["output"].get("uri"):
        problems.append("spec.output.uri: required")
    problems += check_named_list(spec.get("sideInputs"), "sideInputs", SIDE_INPUT_NAME_PATTERN)
    problems += check_named_list(spec.get("env"), "env", ENV_NAME_PATTERN)
    problems += check_reserved_env(spec.get("env"))
    for index, item in enumerate(spec.get("sideInputs") or []):
        if isinstance(item, Mapping) and not isinstance(item.get("uri"), str):
            problems.append(f"spec.sideInputs[{index}].uri: required")
    for index, item in enumerate(spec.get("env") or []):
        if isinstance(item, Mapping) and not isinstance(item.get("value", ""), str):
            problems.append(f"spec.env[{index}].value: must be a string (quote numbers)")
        elif isinstance(item, Mapping) and "\0" in item.get("value", ""):
            problems.append(f"spec.env[{index}].value: holds a NUL character, which no "
                            "environment variable can; remove it")
    return problems + side_input_variable_clashes(spec.get("sideInputs"))


def side_input_variable_clashes(items: Any) -> list[str]:
    """Names that differ only in case or punctuation (model, Model, mo-del) would share one
    PRS_SIDE_INPUT_ variable, and the script would find one side input under each name."""
    if not isinstance(items, list):
        return []
    problems: list[str] = []
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not SIDE_INPUT_NAME_PATTERN.fullmatch(name):
            continue
        variable = SideInput(name, "").env_name
        if variable in first and items[first[variable]]["name"] != name:
            problems.append(f"spec.sideInputs[{index}].name: {name!r} and "
                            f"{items[first[variable]]['name']!r} would share the variable "
                            f"{variable}; rename one")
        first.setdefault(variable, index)
    return problems


def check_overlaps(spec: Mapping[str, Any]) -> list[str]:
    """On a resolved spec (absolute paths or URIs): the output must not be read back as
    input, nor change the code whose bytes make the fingerprint."""
    output = normalized(spec["output"]["uri"])
    problems = []
    sources = [("spec.input.uri", spec["input"]["uri"]),
               ("spec.code.sourceDirectory", spec["code"].get("sourceDirectory") or "")]
    sources += [(f"spec.sideInputs[{s['name']}].uri", s["uri"]) for s in spec["sideInputs"]]
    for field, uri in sources:
        source = normalized(uri)
        if source and (output == source or output.startswith(source.rstrip("/") + "/")):
            problems.append(
                f"spec.output.uri: {spec['output']['uri']} is inside {field} ({uri}): every "
                "run would read its own results back; choose an output outside it"
            )
        elif source and written_by_runs(source, output, spec.get(
                "appendRowFileName", DEFAULTS["appendRowFileName"])):
            problems.append(
                f"{field}: {uri} is what a run writes in spec.output.uri "
                f"({spec['output']['uri']}): each run replaces it; move it out of there"
            )
    return problems


def written_by_runs(source: str, output: str, file_name: str) -> bool:
    """Whether SOURCE is, or is inside, what a run replaces in OUTPUT (both normalized): its
    own folder and the merged file FILE_NAME (the rest of the output folder is the user's
    and never touched)."""
    folder = output if output.endswith("/") else output + "/"  # "/" stays "/"
    return any(source == place or source.startswith(place + "/")
               for place in (folder + "_prs", folder + file_name))


AZURE_SCHEMES = ("abfs", "abfss", "az")


def normalized(uri: str) -> str:
    """URI as compared for overlaps: one spelling per place. An Azure container is one
    place however it is written (abfs://C@ACCOUNT.dfs.core.windows.net/p, abfss://, or
    az://C/p with the account from the environment): the account is left out, since
    az:// does not name it (two accounts' containers of one name compare alike)."""
    uri = uri.removeprefix("file://")
    with contextlib.suppress(UriError):
        location = parse_uri(uri)
        if location.scheme in AZURE_SCHEMES:
            uri = f"az://{location.bucket}/{location.path}"
    scheme, sep, rest = uri.rpartition("://")
    parts = [p for p in rest.split("/") if p not in ("", ".")]
    return f"{scheme}{sep}{'/' if rest.startswith('/') else ''}{'/'.join(parts)}"


def inside_its_root(path: str) -> bool:
    """A relative path that cannot leave the folder it is joined to."""
    parts = path.replace("\\", "/").split("/")
    return not path.startswith("/") and "\x00" not in path and ".." not in parts


def check_reserved_env(items: Any, path: str = "env") -> list[str]:
    return [
        f"spec.{path}[{index}].name: {item['name']!r} is reserved: the runner sets "
        f"{RESERVED_ENV_PREFIX}* variables itself; choose another name"
        for index, item in enumerate(items if isinstance(items, list) else [])
        if isinstance(item, Mapping) and isinstance(item.get("name"), str)
        and item["name"].startswith(RESERVED_ENV_PREFIX)
    ]


def check_named_list(items: Any, path: str, pattern: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    problems, seen = [], set()
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not pattern.fullmatch(name):
            problems.append(
                f"spec.{path}[{index}].name: must match {pattern.pattern} (got {name!r})"
            )
        elif name in seen:
            problems.append(f"spec.{path}[{index}].name: duplicate name {name!r}")
        seen.add(name)
    return problems
