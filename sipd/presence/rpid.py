"""The vocabulary of rich presence (RFC 4480): activities, moods, privacy; and the short
status a user sees ("open", "away", "busy", "closed") derived from a basic status and the
activities.

Activities and moods are element names of the RPID namespace. A value outside the RFC's list
travels as `<rpid:other>value</rpid:other>` and comes back as that text, so anything a user
types survives a round trip.
"""

from __future__ import annotations

__all__ = ["ACTIVITIES", "MOODS", "PRIVACY", "STATUSES", "status_of", "IM_STATUS"]

ACTIVITIES = frozenset({
    "appointment", "away", "breakfast", "busy", "dinner", "holiday", "in-transit",
    "looking-for-work", "meal", "meeting", "on-the-phone", "performance", "permanent-absence",
    "playing", "presentation", "shopping", "sleeping", "spectator", "steering", "travel", "tv",
    "unknown", "vacation", "working", "worship",
})

MOODS = frozenset({
    "afraid", "amazed", "angry", "annoyed", "anxious", "ashamed", "bored", "brave", "calm",
    "cold", "confused", "contented", "cranky", "curious", "depressed", "disappointed",
    "disgusted", "distracted", "embarrassed", "excited", "flirtatious", "frustrated",
    "grumpy", "guilty", "happy", "hot", "humbled", "humiliated", "hungry", "hurt", "impressed",
    "in_awe", "in_love", "indignant", "interested", "invincible", "jealous", "lonely", "mean",
    "moody", "nervous", "neutral", "offended", "playful", "proud", "relieved", "remorseful",
    "restless", "sad", "sarcastic", "serious", "shocked", "shy", "sick", "sleepy", "stressed",
    "surprised", "thirsty", "unknown", "worried",
})

PRIVACY = frozenset({"audio", "text", "video", "unknown"})

# What the short status is, from the most to the least telling.
STATUSES = ("busy", "away", "open", "closed")

# Activities that mean "do not disturb" and "not at the device"; the others (working, tv,
# playing...) leave an open presentity open.
_BUSY = frozenset({"busy", "on-the-phone", "meeting", "performance", "presentation",
                   "appointment", "steering", "worship", "spectator"})
_AWAY = frozenset({"away", "vacation", "holiday", "sleeping", "meal", "breakfast", "dinner",
                   "travel", "in-transit", "shopping", "permanent-absence",
                   "looking-for-work"})

# The `im:im` status extension some clients (and the RFC 3863 example) still use instead of
# RPID: value -> activity.
IM_STATUS = {
    "away": "away", "busy": "busy", "berightback": "away", "onthephone": "on-the-phone",
    "outtolunch": "meal", "idle": "away", "dnd": "busy",
}


def status_of(basic: str | None, activities: list[str]) -> str:
    """The short status: "closed" when no service is open (or none says anything and the
    activities say nothing either), else "busy" or "away" when an activity says so, else
    "open". An activity alone (a document with a person but no service) still tells."""
    names = {activity.lower() for activity in activities}
    if basic == "closed":
        return "closed"
    if names & _BUSY:
        return "busy"
    if names & _AWAY:
        return "away"
    return "open" if basic == "open" else "closed"
