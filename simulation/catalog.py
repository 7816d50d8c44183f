"""Vocabulary of the synthetic world: categories with their base rates, interests and products."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOG", "CategoryProfile"]


@dataclass(frozen=True)
class CategoryProfile:
    """One product category: base rates, creator interests, and products by decision cost."""

    ctr: float  # content click-through of a well-fitting, average creator
    cvr: float  # orders per click, same creator
    price: tuple[float, float]  # median price: standard, non-standard
    non_standard_share: float  # share of campaigns whose products are differentiated
    interests: tuple[str, ...]
    standard: tuple[str, ...]
    non_standard: tuple[str, ...]


# CTR anchors: North-America beauty content about 7%; other categories scaled around it.
CATALOG: dict[str, CategoryProfile] = {
    "beauty": CategoryProfile(
        0.070,
        0.060,
        (9, 34),
        0.85,
        ("skincare", "k-beauty", "makeup", "haircare", "clean beauty", "fragrance", "nail art"),
        ("cotton pads", "makeup remover wipes", "hair ties", "disposable razors"),
        (
            "vitamin C serum",
            "retinol night cream",
            "eyeshadow palette",
            "hair dryer brush",
            "sheet mask set",
            "matte foundation",
        ),
    ),
    "fashion": CategoryProfile(
        0.060,
        0.040,
        (12, 60),
        0.9,
        ("streetwear", "sustainable fashion", "sneakers", "minimalist style", "jewelry"),
        ("crew socks multipack", "plain white t-shirts", "shoe laces"),
        ("linen summer dress", "leather ankle boots", "wool overcoat", "gold hoop earrings"),
    ),
    "home": CategoryProfile(
        0.050,
        0.035,
        (15, 70),
        0.6,
        ("home decor", "interior design", "organization", "cozy living", "diy"),
        ("storage bins", "trash bags", "light bulbs", "shelf liner"),
        ("boucle accent chair", "ceramic table lamp", "linen duvet cover", "wall art prints"),
    ),
    "kitchen": CategoryProfile(
        0.050,
        0.040,
        (12, 80),
        0.55,
        ("cooking", "baking", "meal prep", "coffee", "healthy recipes"),
        ("parchment paper", "dish sponges", "food storage bags"),
        ("espresso machine", "cast iron skillet", "chef knife", "air fryer"),
    ),
    "electronics": CategoryProfile(
        0.040,
        0.030,
        (12, 150),
        0.35,
        ("tech reviews", "gadgets", "gaming", "smart home", "photography"),
        ("usb-c cable", "aa batteries", "phone charger", "hdmi cable", "screen protector"),
        ("noise cancelling headphones", "mirrorless camera", "mechanical keyboard", "smart speaker"),
    ),
    "sports": CategoryProfile(
        0.045,
        0.035,
        (15, 90),
        0.6,
        ("fitness", "running", "yoga", "strength training", "cycling"),
        ("resistance bands", "water bottle", "sweat bands"),
        ("trail running shoes", "smart fitness watch", "adjustable dumbbells", "yoga mat pro"),
    ),
    "outdoors": CategoryProfile(
        0.045,
        0.030,
        (15, 120),
        0.65,
        ("hiking", "camping", "trail running", "fishing", "van life"),
        ("tent stakes", "paracord", "hand warmers"),
        ("ultralight tent", "down sleeping bag", "hiking backpack", "trekking poles"),
    ),
    "toys": CategoryProfile(
        0.050,
        0.040,
        (10, 45),
        0.5,
        ("parenting", "kids activities", "board games", "stem learning"),
        ("crayons", "party balloons", "bubble solution"),
        ("building block set", "wooden play kitchen", "coding robot kit"),
    ),
    "pets": CategoryProfile(
        0.055,
        0.050,
        (10, 50),
        0.45,
        ("dogs", "cats", "pet care", "pet training"),
        ("poop bags", "cat litter", "pet wipes"),
        ("orthopedic dog bed", "automatic cat feeder", "no-pull harness"),
    ),
    "baby": CategoryProfile(
        0.055,
        0.045,
        (12, 90),
        0.55,
        ("parenting", "newborn", "baby gear", "mom life"),
        ("diapers", "baby wipes", "bottle brushes"),
        ("convertible car seat", "baby carrier", "smart bassinet", "stroller"),
    ),
    "health": CategoryProfile(
        0.045,
        0.045,
        (10, 45),
        0.45,
        ("wellness", "nutrition", "supplements", "sleep", "mental health"),
        ("cotton swabs", "bandages", "hand sanitizer"),
        ("collagen powder", "massage gun", "sleep tracking ring"),
    ),
    "automotive": CategoryProfile(
        0.035,
        0.030,
        (12, 80),
        0.3,
        ("cars", "car detailing", "road trips", "motorsport"),
        ("microfiber towels", "wiper blades", "tire gauge"),
        ("dash cam", "ceramic coating kit", "car vacuum"),
    ),
    "tools": CategoryProfile(
        0.035,
        0.030,
        (10, 100),
        0.35,
        ("diy", "woodworking", "home improvement", "power tools"),
        ("wood screws", "duct tape", "sandpaper"),
        ("cordless drill", "laser level", "router table"),
    ),
    "office": CategoryProfile(
        0.035,
        0.030,
        (8, 120),
        0.3,
        ("productivity", "home office", "stationery", "remote work"),
        ("printer paper", "ballpoint pens", "sticky notes", "file folders"),
        ("ergonomic office chair", "standing desk", "fountain pen"),
    ),
    "garden": CategoryProfile(
        0.040,
        0.035,
        (10, 70),
        0.45,
        ("gardening", "houseplants", "urban farming", "landscaping"),
        ("garden twine", "seed starter trays", "plant labels"),
        ("raised garden bed", "self-watering planter", "pruning shears"),
    ),
    "grocery": CategoryProfile(
        0.040,
        0.060,
        (6, 25),
        0.2,
        ("food", "snacks", "healthy eating", "coffee", "vegan"),
        ("paper towels", "bottled water", "rice", "coffee filters"),
        ("single origin coffee beans", "artisan hot sauce", "matcha tea set"),
    ),
}
