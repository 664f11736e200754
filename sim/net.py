"""The simulated network between each terminal and the hub: an httpx transport per
link that drops requests, drops answers after the hub committed, delays, duplicates,
reorders (holds a request back so later ones overtake it), cuts answers mid-body and
partitions; every choice comes from the simulation's one random source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from sim.core import Simulation

FAULTS = ("drop_request", "drop_answer", "delay", "duplicate", "reorder", "cut_answer", "error_503")
CLIENT_TIMEOUT_S = 10  # SyncClient's default timeout: a longer delay is a timeout at the terminal


def copy_request(request: httpx.Request) -> httpx.Request:
    return httpx.Request(request.method, request.url, headers=request.headers, content=request.read())


@dataclass
class Parked:
    """A request on the wire, delivered at a later step (the terminal stopped waiting)."""

    due_step: int
    request: httpx.Request
    why: str


class Link(httpx.BaseTransport):
    def __init__(self, sim: "Simulation", terminal: str) -> None:
        self.sim = sim
        self.terminal = terminal
        self.fault_rate = 0.0
        self.partitioned_until = -1  # step
        self.parked: list[Parked] = []
        self.requests = 0
        self.last_fault: str | None = None  # of the latest request on this link

    def partitioned(self) -> bool:
        return self.sim.step < self.partitioned_until

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sim = self.sim
        request.read()
        self.requests += 1
        name = f"net {self.terminal}->hub"
        self.last_fault = None
        if self.partitioned():
            sim.log(f"{name}: partitioned, request lost")
            raise httpx.ConnectError("sim: partitioned", request=request)
        fault = None
        if self.fault_rate and sim.rng.random() < self.fault_rate:
            fault = sim.rng.choice(FAULTS)
        self.last_fault = fault
        if fault == "drop_request":
            sim.log(f"{name}: request dropped")
            raise httpx.ConnectError("sim: request dropped", request=request)
        if fault == "error_503":
            sim.log(f"{name}: 503 from a proxy")
            return httpx.Response(503, text="sim: service unavailable", request=request)
        if fault == "reorder":
            due = sim.step + sim.rng.randint(1, 6)
            self.parked.append(Parked(due, copy_request(request), "held back"))
            sim.log(f"{name}: request held back until step {due}; the terminal times out")
            raise httpx.ReadTimeout("sim: no answer", request=request)
        if fault == "delay":
            wait = sim.rng.choice((1, 3, 8, 15, 40, 400))
            sim.world.advance(timedelta(seconds=wait))
            response = sim.hub.handle(request, self.terminal)
            if wait > CLIENT_TIMEOUT_S:
                sim.log(f"{name}: delivered {wait}s late (answer {response.status_code}); the terminal had timed out")
                raise httpx.ReadTimeout("sim: answer too late", request=request)
            sim.log(f"{name}: delayed {wait}s, answer {response.status_code}")
            return response
        response = sim.hub.handle(request, self.terminal)
        if fault == "duplicate":
            if sim.rng.random() < 0.5:
                try:
                    again = str(sim.hub.handle(copy_request(request), self.terminal).status_code)
                except httpx.HTTPError:
                    again = "none, the hub died"
                sim.log(f"{name}: request delivered twice (answers {response.status_code}, {again})")
            else:
                due = sim.step + sim.rng.randint(1, 6)
                self.parked.append(Parked(due, copy_request(request), "duplicate"))
                sim.log(f"{name}: request duplicated; the copy arrives at step {due}")
        elif fault == "drop_answer":
            sim.log(f"{name}: answer {response.status_code} lost after the hub committed")
            raise httpx.ReadTimeout("sim: answer lost", request=request)
        elif fault == "cut_answer":
            body = response.content
            cut = sim.rng.randint(0, max(0, len(body) - 1))
            sim.log(f"{name}: answer cut at byte {cut} of {len(body)}")
            return httpx.Response(response.status_code, headers={"content-type": "application/json"},
                                  content=body[:cut], request=request)
        return response

    def deliver_parked(self, everything: bool = False) -> None:
        """Deliver the held-back requests that are due (all of them when healing), in
        an order of the simulation's choosing: the hub's answers go nowhere."""
        sim = self.sim
        due = [p for p in self.parked if everything or p.due_step <= sim.step]
        if not due:
            return
        self.parked = [p for p in self.parked if p not in due]
        sim.rng.shuffle(due)
        for p in due:
            if not sim.hub.up:
                sim.log(f"net {self.terminal}->hub: {p.why} request lost (hub down)")
                continue
            try:
                response = sim.hub.handle(p.request, self.terminal)
            except httpx.HTTPError:
                continue  # the hub died on it (logged there)
            sim.log(f"net {self.terminal}->hub: {p.why} request arrives late: {response.status_code} "
                    f"{problem_code(response)}")


def problem_code(response: httpx.Response) -> str:
    if response.status_code == 200:
        return ""
    try:
        return str(response.json().get("code", ""))
    except ValueError:
        return ""
