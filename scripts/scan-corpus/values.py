"""The planted values of the real-tool corpus (see make.py): personal
information that `pivault scan` must report, each with the masked form it
must print, and decoys it must not report. Everything comes from one
seeded `random.Random`, so the corpus is the same on every run.

A `Planter` hands out sentences for a place in a document ("footer",
"comment") and records what it planted there; make.py later checks each
planted value against the produced file before labelling it.
"""

import random
from dataclasses import dataclass, field

FIRST = ["Maria", "James", "Aisha", "Wei", "Patrick", "Sofia", "Daniel", "Priya",
         "Liam", "Fatima", "Noah", "Grace", "Mateo", "Hannah", "Kenji", "Olivia"]
LAST = ["Gonzalez", "Sullivan", "Okafor", "Chen", "Rossi", "Murphy", "Patel",
        "Walsh", "Haddad", "Nguyen", "McCarthy", "Silva", "Kowalski", "Tanaka"]

# Prose without any keyword the scanner reads (no "account", "order",
# "license", ...), put between planted sentences so that one sentence's
# keywords and bank words (160 bytes either side) cannot reach another's.
FILLER = ("The quarterly review covered staffing, training and the move to the "
          "new office on the third floor; the committee will meet again after "
          "the holidays to settle the remaining questions about furniture.")


@dataclass
class Pi:
    """One planted value: kind and masked as pivault prints them, raw as
    written in the document."""
    kind: str
    masked: str
    raw: str


@dataclass
class Planted:
    """A value planted in `place` of source document `doc`."""
    doc: str
    place: str
    pi: Pi


@dataclass
class Decoy:
    """A decoy planted in `place` of `doc`: `value` must not be reported."""
    doc: str
    place: str
    what: str
    value: str


def luhn_complete(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        v = int(c) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return body + str((10 - total % 10) % 10)


def group(d: str, sizes, sep: str) -> str:
    out, i = [], 0
    for s in sizes:
        out.append(d[i:i + s])
        i += s
    return sep.join(out)


@dataclass
class Planter:
    seed: int
    planted: list = field(default_factory=list)
    decoys: list = field(default_factory=list)
    doc: str = ""
    seen: set = field(default_factory=set)

    def __post_init__(self):
        self.rng = random.Random(self.seed)

    def digits(self, n: int) -> str:
        return "".join(str(self.rng.randrange(10)) for _ in range(n))

    def name(self) -> str:
        return f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"

    def _unique(self, make):
        """A value whose masked form no other planted value has, so that a
        finding names the one place it came from."""
        while True:
            pi = make()
            if (pi.kind, pi.masked) not in self.seen:
                self.seen.add((pi.kind, pi.masked))
                return pi

    def ssn(self, style: str = "dash", low: int = 1) -> Pi:
        """An SSN; `low` the smallest area (100 for a number cell, which
        would lose a leading zero)."""
        def make():
            while True:
                area = low + self.rng.randrange(900 - low)
                if area == 666:
                    continue
                d = f"{area:03}{1 + self.rng.randrange(99):02}{1 + self.rng.randrange(9999):04}"
                parts = (d[:3], d[3:5], d[5:])
                if d in ("078051120", "219099999", "123456789") or all(len(set(p)) == 1 for p in parts):
                    continue
                raw = {"dash": group(d, (3, 2, 4), "-"), "space": group(d, (3, 2, 4), " ")}.get(style, d)
                return Pi("ssn", "***-**-" + d[5:], raw)
        return self._unique(make)

    def card(self, grouped: bool = True) -> Pi:
        def make():
            prefix, n = self.rng.choice([("4", 16), ("53", 16), ("2221", 16), ("37", 15), ("6011", 16)])
            d = luhn_complete(prefix + self.digits(n - len(prefix) - 1))
            sep = self.rng.choice([" ", "-"])
            raw = d if not grouped else group(d, (4, 6, 5) if n == 15 else (4, 4, 4, 4), sep)
            return Pi("payment_card", "*" * (n - 4) + d[-4:], raw)
        return self._unique(make)

    def licence(self) -> Pi:
        def make():
            if self.rng.randrange(2):
                d = self.digits(8)
                return Pi("drivers_license", "*****" + d[5:], "S" + d)
            d = str(1 + self.rng.randrange(9)) + self.digits(8)
            return Pi("drivers_license", "******" + d[6:], d)
        return self._unique(make)

    def account(self) -> Pi:
        def make():
            n = 8 + self.rng.randrange(5)
            d = str(1 + self.rng.randrange(9)) + self.digits(n - 1)
            keep = 4 if n >= 10 else 2
            return Pi("bank_account", "*" * (n - keep) + d[-keep:], d)
        return self._unique(make)

    def plant(self, place: str, pi: Pi) -> str:
        self.planted.append(Planted(self.doc, place, pi))
        return pi.raw

    def pi_sentence(self, place: str, i: int) -> str:
        """A sentence with one piece of PI in context, phrasing `i`."""
        name = self.name()
        p = lambda pi: self.plant(place, pi)  # noqa: E731
        return [
            lambda: f"Employee {name}, SSN {p(self.ssn('dash'))}, started in Boston.",
            lambda: f"{name} social security number: {p(self.ssn('space'))}",
            lambda: f"Taxpayer {name} SSN: {p(self.ssn('bare'))}",
            lambda: f"Cardholder {name}: card {p(self.card(True))} exp 04/27",
            lambda: f"Paid with Visa credit card {p(self.card(False))} for {name}",
            lambda: f"{name}, Massachusetts driver's license {p(self.licence())}",
            lambda: f"Direct deposit for {name}: bank account number {p(self.account())}",
            lambda: f"Savings account {p(self.account())} at Eastern Bank for {name}",
        ][i % 8]()

    def decoy(self, place: str, i: int) -> str:
        """A sentence holding one decoy, kind `i`."""
        d = self.digits
        what, value, text = [
            lambda: ("phone", f"617-555-{d(4)}", "Call (617) 555-0143 or {v} after nine."),
            lambda: ("order number", f"5{d(8)}", "Your order {v} has shipped."),
            lambda: ("ISBN", "978-0-306-40615-7", "Reading list: ISBN {v}."),
            lambda: ("IBAN-like example", "GB29 NWBK 6016 1331 9268 19", "The published example IBAN {v} belongs to nobody."),
            lambda: ("tracking number", f"9400 1000 0000 {d(4)} {d(4)} {d(2)}", "USPS tracking {v} in transit."),
            lambda: ("GUID", f"{d(8)}-{d(4)}-4{d(3)}-8{d(3)}-{d(12)}", "request id {v} completed"),
            lambda: ("hash", f"{d(16)}ab{d(14)}", "sha1 of the build input {v}."),
            lambda: ("timestamp", f"1710{d(6)}", "Logged at epoch {v} by the server."),
            lambda: ("version", f"10.4.{d(9)}", "Upgraded to version {v} today."),
            lambda: ("AWS account ID", f"{d(12)}", "AWS account {v} hosts the staging stack."),
            lambda: ("published test card", "4111 1111 1111 1111", "Use the test card {v} in staging."),
            lambda: ("published test card", "5555 5555 5555 4444", "Sample Mastercard {v} from the docs."),
            lambda: ("invalid SSN (area 000)", f"000-{d(2)}-{d(4)}", "Not valid: SSN {v}."),
            lambda: ("invalid SSN (area 666)", f"666-{d(2)}-{d(4)}", "Not valid either: SSN {v}."),
            lambda: ("invalid SSN (area 9xx)", f"9{d(2)}-{d(2)}-{d(4)}", "An ITIN-range SSN {v} is not an SSN."),
            lambda: ("famous fake SSN", "078-05-1120", "The Woolworth card SSN {v} is a famous fake."),
            lambda: ("Luhn-failing card", None, "Card {v} was declined."),
            lambda: ("licence shape without keyword", f"S{d(8)}", "Room booking code {v} confirmed."),
            lambda: ("ZIP+4", f"02108-{d(4)}", "Mail to Boston, MA {v}."),
        ][i % 19]()
        if value is None:
            good = luhn_complete("4" + d(14))
            value = group(good[:-1] + str((int(good[-1]) + 1) % 10), (4, 4, 4, 4), " ")
        self.decoys.append(Decoy(self.doc, place, what, value))
        return text.format(v=value)
