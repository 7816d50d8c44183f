"""Vocabulary of the second synthetic world, written apart from `simulation.catalog` on purpose.

Creators describe an interest one way (their tags), sellers another (the brief's paraphrase): a theme's tags
and its brief phrases share meaning, rarely words. Product nouns say nothing about decision cost: the same
noun is standard in one campaign and non-standard in the next, decided by latent price and decision cost.
Three categories are not in the first world at all.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALT_CATALOG", "BRAND_VOICES", "GENERIC_TAGS", "WEAK_CUES", "AltCategory", "Theme"]


@dataclass(frozen=True)
class Theme:
    """One interest: how creators tag it, and how a seller's brief paraphrases it."""

    tags: tuple[str, ...]
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class AltCategory:
    """A category: content click-through and orders per click of a fitting creator, median price, themes, products."""

    ctr: float
    cvr: float
    price: float
    themes: tuple[Theme, ...]
    products: tuple[str, ...]


ALT_CATALOG: dict[str, AltCategory] = {
    "beauty": AltCategory(
        0.055,
        0.05,
        22,
        (
            Theme(("glow routine", "skin health", "derm tips"), ("a clearer, brighter complexion", "calm skin")),
            Theme(("glam looks", "beauty tutorials"), ("evening looks that last", "bold colour for the face")),
            Theme(("curly hair", "scalp care"), ("frizz-free coils", "healthier strands from the root")),
        ),
        ("face oil", "lip tint", "brow gel", "scalp scrub", "toner", "setting spray", "hair mask"),
    ),
    "kitchen": AltCategory(
        0.045,
        0.04,
        35,
        (
            Theme(("home chef", "weeknight dinners"), ("dinner for everyone on the table fast", "fewer takeaways")),
            Theme(("sourdough", "pastry life"), ("a crackling crust from your own oven", "laminated dough")),
            Theme(("latte art", "espresso nerd"), ("a cafe-quality cup at home", "the morning ritual")),
        ),
        ("saucepan", "kettle", "grinder", "mixing bowls", "knife roll", "dutch oven", "milk frother"),
    ),
    "electronics": AltCategory(
        0.035,
        0.028,
        60,
        (
            Theme(("pc building", "battlestation"), ("frame rates and a tidy desk setup", "long sessions of play")),
            Theme(("audiophile", "hi-fi"), ("sound the way the artist mixed it", "quiet on a noisy commute")),
            Theme(("camera gear", "street photos"), ("sharper low-light shots", "telling stories in pictures")),
        ),
        ("earbuds", "monitor arm", "webcam", "power bank", "speaker", "tripod", "keyboard"),
    ),
    "sports": AltCategory(
        0.04,
        0.032,
        40,
        (
            Theme(("marathon training", "5k club"), ("logging more miles without sore knees", "race day")),
            Theme(("home gym", "lifting"), ("getting stronger in a spare room", "progressive overload")),
            Theme(("pilates", "mobility"), ("a flexible, pain-free back", "core work on the mat")),
        ),
        ("foam roller", "jump rope", "gym bag", "grip trainer", "running vest", "kettlebell"),
    ),
    "pets": AltCategory(
        0.05,
        0.045,
        28,
        (
            Theme(("rescue dogs", "puppy life"), ("a calmer, happier pup on walks", "four-legged housemates")),
            Theme(("cat mom", "feline care"), ("indoor kitties who get bored", "a purring companion")),
        ),
        ("chew toy", "harness", "water fountain", "grooming brush", "travel crate", "treat pouch"),
    ),
    "garden": AltCategory(
        0.04,
        0.034,
        30,
        (
            Theme(("plant parent", "monstera"), ("leafy roommates that thrive indoors", "bright windowsills")),
            Theme(("veg patch", "grow your own"), ("tomatoes picked from your own beds", "a backyard harvest")),
        ),
        ("watering can", "potting mix", "trellis", "grow light", "kneeler", "hose reel"),
    ),
    "office": AltCategory(
        0.032,
        0.028,
        45,
        (
            Theme(("wfh setup", "desk tour"), ("a workspace that keeps you focused", "long days at the laptop")),
            Theme(("planners", "bullet journal"), ("getting the week on paper", "handwritten lists")),
        ),
        ("desk mat", "notebook", "monitor riser", "pen case", "cable tray", "task lamp"),
    ),
    "baby": AltCategory(
        0.05,
        0.042,
        40,
        (
            Theme(("new parents", "first year"), ("the sleepless first months", "a newborn's first weeks")),
            Theme(("toddler play", "montessori"), ("little hands learning by doing", "screen-free afternoons")),
        ),
        ("swaddle", "play mat", "bottle warmer", "teether", "diaper bag", "night light"),
    ),
    "books": AltCategory(
        0.045,
        0.05,
        18,
        (
            Theme(("booktok", "thriller reads"), ("a page-turner you finish in one night", "twists")),
            Theme(("cozy fantasy", "romantasy"), ("dragons, chosen kin and slow-burn love", "escapism")),
        ),
        ("hardcover", "box edition", "audiobook bundle", "illustrated edition", "book sleeve"),
    ),
    "crafts": AltCategory(
        0.045,
        0.04,
        26,
        (
            Theme(("knitting", "yarn addict"), ("cosy handmade jumpers", "stitches for winter evenings")),
            Theme(("watercolor", "sketchbook"), ("loose washes of colour", "painting outdoors")),
        ),
        ("yarn bundle", "brush roll", "paint tin", "cutting mat", "loom", "embroidery hoop"),
    ),
    "travel": AltCategory(
        0.04,
        0.03,
        55,
        (
            Theme(("carry-on only", "digital nomad"), ("living out of one bag for months", "flights without fees")),
            Theme(("family trips", "road tripping"), ("long drives with kids in the back", "holiday packing")),
        ),
        ("packing cubes", "neck pillow", "daypack", "luggage scale", "toiletry bag", "roller case"),
    ),
}

# Coarse interests many real profiles carry; they say little about any category.
GENERIC_TAGS = ("lifestyle", "daily vlog", "family", "reviews", "inspiration", "must haves")
DEAL_TAGS = {
    "deals_site": ("bargains", "price drops"),
    "coupon_site": ("promo codes", "discount codes"),
    "cashback_site": ("money back", "rebates"),
    "loyalty_referral": ("members perks", "refer a friend"),
}
# Brand voices: how a seller writes, independent of what the product is.
BRAND_VOICES = (
    "Meet the {brand} {product}. Made for {phrase}. {cue}",
    "{product} by {brand}: {cue} Think {phrase}.",
    "At {brand} we obsess over {phrase}, so we built this {product}. {cue}",
    "Your audience asked for {phrase}? Our {product} delivers. {cue} Campaign covers several variants.",
    "{brand} presents the {product} - {cue}",
    "We are {brand}. {cue} Tell your followers how the {product} helps with {phrase}.",
)
# Words that lean one way, as real copy does, but only weakly: each type draws from its own list only sometimes.
WEAK_CUES = {
    "standard": (
        "Ships fast and restocks easily.",
        "A dependable everyday pick.",
        "Great value for the money.",
        "Comes in a handy bundle.",
    ),
    "non_standard": (
        "Thoughtfully designed down to the last detail.",
        "Our most researched release yet.",
        "Built to be kept for years.",
        "Comes in a gift-ready bundle.",
    ),
}
