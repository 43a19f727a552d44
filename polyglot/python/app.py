"""The conformance runner as a Python guest (componentize-py).

It imports the store through the WIT interface, plays conformance/flow.json
and exports the report through `sqlite-sessions:conformance/runner`. Store
errors arrive as `componentize_py_types.Err` whose `value` is the WIT
`error` variant (`Error_InvalidKey(...)`, `Error_NotFound()`, ...); the
runner reports the variant's WIT name so every runner's outcomes compare.
"""

import json
import re

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import sessions


def variant_name(error) -> str:
    """`Error_InvalidKey(...)` -> `invalid-key`."""
    cls = type(error).__name__
    if not cls.startswith("Error_"):
        raise TypeError(f"not a sessions.error variant: {error!r}")
    return re.sub(r"(?<!^)(?=[A-Z])", "-", cls[len("Error_"):]).lower()


def make_config(directory: str, flow: dict) -> sessions.Config:
    cfg = flow.get("config", {})
    return sessions.Config(
        directory=directory,
        max_key_bytes=None,
        max_value_bytes=cfg.get("max-value-bytes"),
        max_session_bytes=None,
        max_keys=None,
        max_live_sessions=None,
        idle_timeout_seconds=None,
        absolute_timeout_seconds=None,
        activity_granularity_seconds=None,
        busy_timeout_ms=None,
        lock_lease_ms=None,
        durability=None,
        shared_directory=None,
        check_directory=None,
        file_name_secret=None,
        signing_keys=None,
        cookie=sessions.CookieConfig(
            name=None, path=None, domain=None, secure=None,
            http_only=None, same_site=None, persistent=None,
        ),
    )


def path_segments(path: list) -> list:
    segments = []
    for seg in path:
        if "key" in seg:
            segments.append(sessions.PathSegment_Key(seg["key"]))
        else:
            segments.append(sessions.PathSegment_Index(seg["index"]))
    return segments


def json_arg(case: dict) -> str:
    if "json-text" in case:
        return case["json-text"]
    return json.dumps(case["json"])


def json_out(text):
    return None if text is None else json.loads(text)


def hex_out(data):
    return None if data is None else bytes(data).hex()


class Flow:
    def __init__(self, store: sessions.Store):
        self.store = store
        self.sessions: dict = {}
        self.ids: dict = {}

    def id_arg(self, case: dict) -> str:
        ref = case["id"]
        return self.ids[ref["var"]] if "var" in ref else ref["literal"]

    def play(self, case: dict):
        """The case's value on success; raises Err from the store."""
        op = case["op"]
        key = case.get("key", "")
        if op == "create":
            self.sessions[case["as"]] = self.store.create()
            return None
        if op == "load":
            found = self.store.load(self.id_arg(case))
            if found is not None and "as" in case:
                self.sessions[case["as"]] = found
            return found is not None
        if op == "destroy-id":
            return self.store.destroy_id(self.id_arg(case))
        if op == "cookie-value-from-header":
            return self.store.cookie_value_from_header(case["header"])

        s = self.sessions[case["session"]]
        if op == "id":
            self.ids[case["save"]] = s.id()
            return None
        if op == "is-new":
            return s.is_new()
        if op == "get":
            return hex_out(s.get(key))
        if op == "get-json":
            return json_out(s.get_json(key))
        if op == "set":
            return s.set(key, bytes.fromhex(case["cbor"]))
        if op == "set-json":
            return s.set_json(key, json_arg(case))
        if op == "remove":
            return s.remove(key)
        if op == "take":
            return hex_out(s.take(key))
        if op == "take-json":
            return json_out(s.take_json(key))
        if op == "contains":
            return s.contains(key)
        if op == "keys":
            return list(s.keys())
        if op == "len":
            return s.len()
        if op == "clear":
            return s.clear()
        if op == "destroy":
            return s.destroy()
        if op == "regenerate":
            return s.regenerate()
        if op == "set-in":
            return s.set_in(key, path_segments(case["path"]), bytes.fromhex(case["cbor"]))
        if op == "set-in-json":
            return s.set_in_json(key, path_segments(case["path"]), json_arg(case))
        if op == "remove-in":
            return s.remove_in(key, path_segments(case["path"]))
        if op == "append":
            return s.append(key, bytes.fromhex(case["cbor"]))
        if op == "append-json":
            return s.append_json(key, json_arg(case))
        raise ValueError(f"unknown op {op!r}")

    def close(self):
        # Drop the handles now (runs the store's destructors, which record
        # each session's expiry for `sweep`) rather than whenever Python
        # collects them.
        for s in self.sessions.values():
            s.__exit__(None, None, None)
        self.sessions.clear()


class Runner(exports.Runner):
    def run(self, flow_json: str, directory: str) -> str:
        try:
            flow = json.loads(flow_json)
            cases = flow["cases"]
        except (ValueError, KeyError, TypeError) as e:
            raise Err(f"malformed flow: {e}")
        try:
            store = sessions.Store.open(make_config(directory, flow))
        except Err as e:
            raise Err(f"store.open failed: {e.value!r}")

        runner = Flow(store)
        results = []
        try:
            for case in cases:
                try:
                    actual = {"ok": runner.play(case)}
                except Err as e:
                    actual = {"error": variant_name(e.value)}
                except (KeyError, ValueError, TypeError) as e:
                    raise Err(f"case {case.get('name')!r}: {type(e).__name__}: {e}")
                results.append({
                    "name": case["name"],
                    "actual": actual,
                    "pass": actual == case["expect"],
                })
        finally:
            runner.close()
            store.__exit__(None, None, None)
        return json.dumps({"runner": "python-componentize-py", "cases": results, "ids": runner.ids})
