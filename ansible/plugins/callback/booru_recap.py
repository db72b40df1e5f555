"""Callback plugin: the play recap as JSON, per host, for `booru-release publish seedboxes`.

Enabled with ANSIBLE_CALLBACKS_ENABLED=booru_recap; writes to the file named by BOORU_RECAP_FILE (nothing
without it). Failed tasks are kept with their message (no_log tasks are already censored by Ansible).
"""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: booru_recap
type: aggregate
short_description: write the play recap as JSON for booru-release
description: Per host ok/changed/failed/unreachable/skipped counts, failed tasks and custom stats.
requirements: [the BOORU_RECAP_FILE environment variable]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "booru_recap"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self.failures: dict[str, list[dict[str, str]]] = {}

    def _failed(self, result, why: str) -> None:
        message = str(result._result.get("msg") or why)
        stderr = str(result._result.get("stderr") or "").strip()
        if stderr:  # a command's own words say more than "non-zero return code"
            message = f"{message}: {stderr}"
        self.failures.setdefault(result._host.get_name(), []).append(
            {"task": result._task.get_name(), "msg": message[-2000:]}
        )

    def v2_runner_on_failed(self, result, ignore_errors: bool = False) -> None:
        if not ignore_errors:
            self._failed(result, "failed")

    def v2_runner_on_unreachable(self, result) -> None:
        self._failed(result, "unreachable")

    def v2_playbook_on_stats(self, stats) -> None:
        target = os.environ.get("BOORU_RECAP_FILE")
        if not target:
            return
        hosts = {}
        for host in sorted(stats.processed):
            summary = stats.summarize(host)
            hosts[host] = {
                "ok": summary["ok"], "changed": summary["changed"], "failed": summary["failures"],
                "unreachable": summary["unreachable"], "skipped": summary["skipped"],
                "rescued": summary["rescued"], "ignored": summary["ignored"],
                "failures": self.failures.get(host, []), "stats": stats.custom.get(host, {}),
            }
        temporary = target + ".tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump({"hosts": hosts, "stats": stats.custom.get("_run", {})}, handle, indent=1, sort_keys=True)
        os.replace(temporary, target)
