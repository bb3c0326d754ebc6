"""The words generated content draws from: names, roles, places, objects, on-screen texts, the
prompts and schema of extract configs, and failed jobs' errors (unicode on purpose)."""

from __future__ import annotations

NAMES = ("Ana", "Zoë", "José", "Mei Lin", "Olúwaseun", "Björk", "Дмитрий", "佐藤", "Noah", "Aïsha")
ROLES = ("host", "guest", "chef", "narrator", "athlete", "customer", None)
LOCATIONS = ("kitchen", "studio", "stadium", "street", "office", "beach", "café", "forest")
OBJECTS = ("knife", "pan", "laptop", "microphone", "ball", "car", "guitar", "phone", "cup", "sign")
TEXTS = (
    "Breaking news",
    "Café ☕ ouvert",
    "東京タワー",
    "¡Oferta!",
    "Ünïcödé ✓",
    "Привет мир",
    "emoji 🎬🍿",
)
PROMPTS = (
    "List the people, objects and any on-screen text in each scene.",
    "Extract speakers, sentiment and products shown.",
    "Describe the setting and who appears in it.",
)
ERRORS = (
    "Video download failed: HTTP 403 Forbidden",
    "Unsupported codec: prores_ks",
    "Extraction timed out after 3600 seconds",
    "Le fichier vidéo est corrompu",
)
# The schema of schema-based extract configs; segment entities follow it.
SCHEMA = {
    "scene": {"location": "string", "lighting": "string", "time_of_day": "string"},
    "people": [{"name": "string", "role": "string", "confidence": "number"}],
    "objects": ["string"],
    "speaker_count": "integer",
    "on_screen_text": "string",
    "sentiment": "string",
}
