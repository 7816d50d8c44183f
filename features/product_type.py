"""Deciding whether a campaign's products are standard (commodity) or non-standard (high decision cost)."""

from __future__ import annotations

from features.text import tokens

__all__ = ["CATEGORY_LEAN", "resolve_product_type"]

# Basis: creator content converts best where shoppers need persuading (apparel, beauty, decor, premium
# gear) and least for commodities bought on price and habit (cables, batteries, bins, wipes).
COMMODITY_WORDS = frozenset(
    [
        "cable",
        "cables",
        "battery",
        "batteries",
        "charger",
        "chargers",
        "adapter",
        "wipes",
        "wipe",
        "bins",
        "bin",
        "bags",
        "bag",
        "liner",
        "tape",
        "screws",
        "paper",
        "towels",
        "towel",
        "pens",
        "pen",
        "sticky",
        "notes",
        "folders",
        "filters",
        "filter",
        "sponges",
        "sponge",
        "refill",
        "refills",
        "multipack",
        "pack",
        "bulk",
        "basics",
        "everyday",
        "staples",
        "socks",
        "laces",
        "stakes",
        "paracord",
        "swabs",
        "bandages",
        "sanitizer",
        "diapers",
        "labels",
        "twine",
        "trays",
        "crayons",
        "balloons",
        "bulbs",
        "protector",
        "gauge",
        "pads",
        "ties",
        "razors",
        "water",
        "rice",
    ]
)
DIFFERENTIATED_WORDS = frozenset(
    [
        "premium",
        "luxury",
        "designer",
        "design",
        "handmade",
        "artisan",
        "limited",
        "serum",
        "cream",
        "palette",
        "foundation",
        "dress",
        "boots",
        "coat",
        "earrings",
        "jewelry",
        "decor",
        "lamp",
        "chair",
        "duvet",
        "art",
        "espresso",
        "skillet",
        "knife",
        "headphones",
        "camera",
        "keyboard",
        "speaker",
        "shoes",
        "watch",
        "tent",
        "backpack",
        "sleeping",
        "carrier",
        "stroller",
        "bassinet",
        "car",
        "seat",
        "massage",
        "ring",
        "coating",
        "cam",
        "vacuum",
        "drill",
        "level",
        "desk",
        "fountain",
        "planter",
        "bed",
        "feeder",
        "harness",
        "kit",
        "set",
        "collagen",
        "matcha",
        "beans",
        "distinctive",
        "signature",
        "formula",
        "collection",
        "style",
    ]
)
# Share of campaigns in a category that are non-standard when the brief says nothing either way.
CATEGORY_LEAN = {
    "beauty": 0.85,
    "fashion": 0.9,
    "home": 0.6,
    "kitchen": 0.55,
    "electronics": 0.35,
    "sports": 0.6,
    "outdoors": 0.65,
    "toys": 0.5,
    "pets": 0.45,
    "baby": 0.55,
    "health": 0.45,
    "automotive": 0.3,
    "tools": 0.35,
    "office": 0.3,
    "garden": 0.45,
    "grocery": 0.2,
}


def resolve_product_type(declared: str, brief: str, category: str) -> tuple[str, str]:
    """Returns (`standard` or `non_standard`, why) for a campaign.

    A declared type wins. For `auto`, words of the brief that mark commodities or differentiated
    products vote, each worth one; the category's usual lean breaks ties.
    """
    if declared in ("standard", "non_standard"):
        return declared, "declared by the seller"
    words = tokens(brief)
    commodity = sorted(words & COMMODITY_WORDS)
    differentiated = sorted(words & DIFFERENTIATED_WORDS)
    lean = CATEGORY_LEAN.get(category, 0.5) - 0.5
    score = len(differentiated) - len(commodity) + 1.5 * lean
    resolved = "non_standard" if score > 0 else "standard"
    cue = differentiated if resolved == "non_standard" else commodity
    why = f"brief mentions {', '.join(cue[:3])}" if cue else f"{category} products usually are"
    return resolved, why
