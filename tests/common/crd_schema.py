"""Validates documents against a CRD's openAPIV3Schema as the API server does under
kubectl's strict field validation: OpenAPI's `nullable` and `x-kubernetes-int-or-string`
become JSON Schema, and an object schema with properties refuses unknown fields unless it
says `x-kubernetes-preserve-unknown-fields`.

Input (argv[1]): {"schema": ..., "documents": [...]}. Output: a JSON list with, per
document, the sorted list of its errors as "<dotted path>: <message>".
"""
import json
import sys

import jsonschema


def structural(schema):
    if isinstance(schema, list):
        return [structural(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: structural(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "allOf", "anyOf", "oneOf", "not"):
            out[key] = structural(value)
        else:
            out[key] = value
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    if out.pop("nullable", False):
        out = {"anyOf": [{"type": "null"}, out]}
    return out


def main():
    with open(sys.argv[1]) as handle:
        data = json.load(handle)
    root = data["schema"]
    # The API server validates apiVersion, kind and metadata itself; a CRD's schema omits them.
    root.setdefault("properties", {}).update(
        {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
         "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    )
    validator = jsonschema.Draft7Validator(structural(root))
    results = []
    for document in data["documents"]:
        errors = []
        for error in validator.iter_errors(document):
            path = ".".join(str(part) for part in error.absolute_path)
            errors.append(f"{path}: {error.message}")
        results.append(sorted(errors))
    json.dump(results, sys.stdout)


main()
