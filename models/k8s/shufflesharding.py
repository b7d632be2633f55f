"""Shuffle sharding: deal a hand of distinct queue indices out of a deck, from a flow's hash.

The mechanism of Kubernetes' dealer (``kubernetes/apiserver`` ``pkg/util/shufflesharding/shufflesharding.go``,
``Dealer.Deal``): the hash value is read as a mixed-radix number whose digits are taken with radices
``deck_size``, ``deck_size - 1``, ..., ``deck_size - hand_size + 1``; digit ``i`` picks among the cards not
yet dealt, so it is bumped past every earlier card it is not below (earlier cards taken from the last to the
first). A flow always gets the same hand, two flows rarely the same one, and every hand is equally likely
when the hash is uniform over a multiple of the number of ordered hands.

Limits, as upstream ``NewDealer``: both sizes positive, the hand no larger than the deck, a deck of at most
2**26 cards, and at most :data:`MAX_HASH_BITS` bits of the hash consumed
(:func:`required_entropy_bits`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

MAX_HASH_BITS = 60
"""Bits of the hash a deal may consume (upstream ``MaxHashBits``: above it the last card's choice is uneven)."""
MAX_DECK_SIZE = 1 << 26
"""The largest deck upstream accepts ("impractically large" above)."""
UINT64 = (1 << 64) - 1


class DealerError(ValueError):
    """A deck and hand size the dealer refuses; the message names both values."""


def required_entropy_bits(deck_size: int, hand_size: int) -> int:
    """Bits of hash a deal of ``hand_size`` cards from ``deck_size`` consumes, rounded up (a slightly
    conservative estimate: ``ceil(log2(deck) * hand)``)."""
    return math.ceil(math.log2(deck_size) * hand_size)


class Dealer:
    """Deals hands of ``hand_size`` distinct cards in ``[0, deck_size)`` from a 64-bit hash value."""

    def __init__(self, deck_size: int, hand_size: int) -> None:
        if deck_size <= 0 or hand_size <= 0:
            raise DealerError(f"deckSize {deck_size} or handSize {hand_size} is not positive")
        if hand_size > deck_size:
            raise DealerError(f"handSize {hand_size} is greater than deckSize {deck_size}")
        if deck_size > MAX_DECK_SIZE:
            raise DealerError(f"deckSize {deck_size} is impractically large")
        if required_entropy_bits(deck_size, hand_size) > MAX_HASH_BITS:
            raise DealerError(f"required entropy bits of deckSize {deck_size} and handSize {hand_size} "
                              f"is greater than {MAX_HASH_BITS}")
        self.deck_size = deck_size
        self.hand_size = hand_size

    def deal(self, hash_value: int, pick: Callable[[int], None]) -> None:
        """Call ``pick`` with each card of the hand of ``hash_value`` (an unsigned 64-bit integer), in
        the order dealt."""
        remainders = []
        value = hash_value & UINT64
        for i in range(self.hand_size):
            value, remainder = divmod(value, self.deck_size - i)
            remainders.append(remainder)
        for i, card in enumerate(remainders):
            for j in range(i, 0, -1):
                if card >= remainders[j - 1]:
                    card += 1
            pick(card)

    def hand(self, hash_value: int) -> list[int]:
        """The hand of ``hash_value`` as a list, in the order dealt."""
        cards: list[int] = []
        self.deal(hash_value, cards.append)
        return cards

    def hands(self, hash_values: np.ndarray) -> np.ndarray:
        """The hands of many hash values at once (unsigned 64-bit array), one row each: the same deal as
        :meth:`deal`, in NumPy, for dealing to many flows (or checking the deal's uniformity)."""
        value = np.asarray(hash_values, dtype=np.uint64).copy()
        remainders = np.empty((value.size, self.hand_size), dtype=np.int64)
        for i in range(self.hand_size):
            radix = np.uint64(self.deck_size - i)
            remainders[:, i] = (value % radix).astype(np.int64)
            value //= radix
        cards = remainders.copy()
        for i in range(1, self.hand_size):
            card = cards[:, i]
            for j in range(i, 0, -1):
                card += card >= remainders[:, j - 1]
        return cards
