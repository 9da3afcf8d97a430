"""Login throttling that slows guessing without letting a stranger lock a real user out (OWASP's
"Blocking Brute Force Attacks": growing delays, not a hard lock; trusted devices keep working).

Failures are counted on three kinds of key, each in a bounded, self-pruning map:
- the client address (any account): 20 free failures, then each further attempt from that address
  waits 1 s, 2 s, 4 s ... at most 5 minutes. Only the guesser's own address (or a network sharing it)
  slows down.
- the account (any address): 5 free failures, then 1 s, 2 s, 4 s ... at most 60 s. This delay is
  skipped for an address with no failures at all in the window, so a stranger hammering an account
  never stops its owner logging in from their own phone or office; a guesser spread over many
  addresses gets one free guess per address per window.
- a trusted device: a browser or phone that has logged in to the account before carries a signed
  device cookie (auth.py). It is judged by its own failures only, not by the address or the account,
  so the owner's phone stays usable even from an address a guesser shares; ten failures on a device
  make it untrusted (judged like any other client) until they expire.
Failures are forgotten 15 minutes after the last one on a key. Once a key is past its free failures,
each attempt is counted when it starts, so parallel guesses can't slip through one open slot; a
success takes back only its own count (a guesser's login to their own account resets nothing) and
clears its device's failures.

Memory is bounded: usernames longer than 32 characters are refused before anything is stored (see
users.normalise_username), addresses are cut to 64 characters, every map holds at most a fixed number
of keys (least recently failed dropped first) and expired keys are pruned as new ones arrive.
Unknown usernames are counted like real ones (in their own map, so flooding them can't push a real
account's count out), and so are throttled alike: a 429 says nothing about whether an account exists.
"""

import threading
import time
from collections import OrderedDict

WINDOW_SECONDS = 15 * 60
ADDRESS_MAX_LEN = 64


class Rule:
    def __init__(self, free, cap_seconds):
        self.free, self.cap = free, cap_seconds

    def delay(self, failures):
        """Seconds to wait after the last failure before the next attempt, given `failures`."""
        if failures < self.free:
            return 0
        return min(self.cap, 2 ** min(failures - self.free, 30))


ADDRESS = Rule(free=20, cap_seconds=300)
ACCOUNT = Rule(free=5, cap_seconds=60)
DEVICE = Rule(free=10, cap_seconds=0)  # no delay: past 10 failures a device is trusted no more


class FailureMap:
    """key -> [failures, time of the last one], least recently failed first; bounded and pruned."""

    def __init__(self, max_keys, window=WINDOW_SECONDS):
        self.max_keys, self.window = max_keys, window
        self._items = OrderedDict()

    def __len__(self):
        return len(self._items)

    def get(self, key, now):
        entry = self._items.get(key)
        if entry is None or now - entry[1] > self.window:
            return 0, 0.0
        return entry[0], entry[1]

    def add(self, key, now):
        failures, _last = self.get(key, now)
        self._items[key] = [failures + 1, now]
        self._items.move_to_end(key)
        self._prune(now)

    def take_back(self, key, now):
        entry = self._items.get(key)
        if entry is not None:
            entry[0] = max(0, entry[0] - 1)
            if entry[0] == 0:
                del self._items[key]

    def clear(self, key):
        self._items.pop(key, None)

    def _prune(self, now):
        while self._items:
            key, (_n, last) = next(iter(self._items.items()))
            if len(self._items) > self.max_keys or now - last > self.window:
                del self._items[key]
            else:
                break


class Attempt:
    """One login attempt under way: call failed() or succeeded() once it is known."""

    def __init__(self, throttle, keys, reserved):
        self.throttle, self.keys, self.reserved = throttle, keys, reserved

    def failed(self):
        self.throttle._finish(self, ok=False)

    def succeeded(self):
        self.throttle._finish(self, ok=True)


class LoginThrottle:
    def __init__(self, clock=time.monotonic, max_keys=20_000):
        self.clock = clock
        self._lock = threading.Lock()
        self.addresses = FailureMap(max_keys)
        self.accounts = FailureMap(max_keys)          # usernames of real accounts
        self.unknown_accounts = FailureMap(max_keys)  # well-formed names with no account
        self.devices = FailureMap(max_keys)

    def _wait(self, fmap, rule, key, now):
        failures, last = fmap.get(key, now)
        if failures == 0:
            return 0
        return max(0.0, last + rule.delay(failures) - now)

    def begin(self, address, username=None, known=False, device=None):
        """(attempt, 0) when this attempt may go on, or (None, seconds to wait).
        `username` None: a name no account can have (only the address counts). `device`: the id of a
        trusted device cookie for this username."""
        address = (address or "")[:ADDRESS_MAX_LEN]
        accounts = self.accounts if known else self.unknown_accounts
        with self._lock:
            now = self.clock()
            if device is not None and self.devices.get(device, now)[0] >= DEVICE.free:
                device = None  # too many failures from this device: judged like any other client
            if device is not None:
                wait = 0  # the owner's own phone: neither a guesser's address nor the account slows it
            else:
                wait = self._wait(self.addresses, ADDRESS, address, now)
                address_clean = self.addresses.get(address, now)[0] == 0
                if username is not None and not address_clean:
                    wait = max(wait, self._wait(accounts, ACCOUNT, username, now))
            if wait > 0:
                return None, max(1, int(wait + 0.999))
            keys = [(self.addresses, ADDRESS, address)]
            if username is not None:
                keys.append((accounts, ACCOUNT, username))
            if device is not None:
                keys.append((self.devices, DEVICE, device))
            # Once a key is past its free failures, the attempt takes its slot now, so parallel
            # guesses can't share one; before that, it counts only if it fails (logins at once
            # from one office are not guesses).
            reserved = [(fmap, key) for fmap, rule, key in keys if fmap.get(key, now)[0] >= rule.free]
            for fmap, key in reserved:
                fmap.add(key, now)
            return Attempt(self, [(fmap, key) for fmap, _rule, key in keys], reserved), 0

    def _finish(self, attempt, ok):
        with self._lock:
            now = self.clock()
            for fmap, key in attempt.keys:
                was_reserved = (fmap, key) in attempt.reserved
                if not ok:
                    if not was_reserved:
                        fmap.add(key, now)
                elif fmap is self.devices:
                    fmap.clear(key)
                elif was_reserved:  # only this attempt's own count: earlier failures stay counted
                    fmap.take_back(key, now)

    def size(self):
        with self._lock:
            return sum(len(m) for m in (self.addresses, self.accounts, self.unknown_accounts,
                                        self.devices))
