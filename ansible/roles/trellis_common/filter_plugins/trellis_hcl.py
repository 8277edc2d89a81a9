"""Render Ansible data as the HCL that Trellis reads from /etc/trellis.d (docs/configuration.md).

Maps become blocks (``connect { ... }``), lists and maps inside lists become ``[...]`` and
``{ k = v }``, strings are quoted with JSON's escapes (which Trellis's HCL lexer accepts), so the
files look like deploy/lab/services/*.hcl.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible.errors import AnsibleFilterError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _key(key):
    key = str(key)
    return key if _IDENT.match(key) else json.dumps(key)


def _value(value, indent):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        pad = "  " * (indent + 1)
        inner = "\n".join(
            "%s%s = %s" % (pad, _key(k), _value(v, indent + 1)) for k, v in value.items()
        )
        return "{\n%s\n%s}" % (inner, "  " * indent)
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        pad = "  " * (indent + 1)
        inner = ",\n".join(pad + _value(v, indent + 1) for v in value)
        return "[\n%s,\n%s]" % (inner, "  " * indent)
    raise AnsibleFilterError("trellis_hcl: cannot write a %s as HCL" % type(value).__name__)


def _body(data, indent):
    lines = []
    pad = "  " * indent
    for key, value in data.items():
        if isinstance(value, dict) and value:
            lines.append("%s%s {" % (pad, _key(key)))
            lines.extend(_body(value, indent + 1))
            lines.append("%s}" % pad)
        else:
            lines.append("%s%s = %s" % (pad, _key(key), _value(value, indent)))
    return lines


def trellis_hcl(data):
    """The body of an HCL file: top-level keys, nested maps as blocks."""
    if not isinstance(data, dict):
        raise AnsibleFilterError("trellis_hcl: expected a mapping, got %s" % type(data).__name__)
    return "\n".join(_body(data, 0)) + "\n"


class FilterModule(object):
    def filters(self):
        return {"trellis_hcl": trellis_hcl}
