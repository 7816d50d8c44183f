"""The real embedding model: offline resolution, normalised vectors, meaning, and the content-hash cache."""

from __future__ import annotations

import numpy as np
import pytest

from features.embeddings import Embedder, resolve_model_path
from features.text import campaign_text, creator_text


def test_vectors_are_unit_length_384_dimensional_and_repeatable(embedder):
    """Same text, same vector; every vector has unit norm."""
    texts = ["skincare and k-beauty routines", "usb-c cables in bulk", "skincare and k-beauty routines"]
    vectors = embedder.encode(texts)
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])


def test_profiles_are_closest_to_briefs_of_their_topic(embedder):
    """A skincare creator is nearer a serum brief than a cable brief, and a tech reviewer the reverse."""
    beauty = creator_text("social_creator", ["skincare", "k-beauty", "makeup"], "Daily skincare routines.")
    tech = creator_text("review_site", ["tech reviews", "gadgets"], "We test chargers and cables.")
    serum = campaign_text("Launch of our vitamin C serum for glowing skin.", "beauty")
    cable = campaign_text("Durable braided USB-C charging cables, 3-pack.", "electronics")
    c_beauty, c_tech, b_serum, b_cable = embedder.encode([beauty, tech, serum, cable])
    assert c_beauty @ b_serum > c_beauty @ b_cable
    assert c_tech @ b_cable > c_tech @ b_serum


def test_cached_vectors_are_reused_without_loading_the_model(tmp_path, embedder):
    """A second embedder with the same cache directory answers known texts without loading the model."""
    texts = ["hiking and camping gear", "espresso at home"]
    first = Embedder(cache_dir=tmp_path)
    first._encoder = embedder.encoder  # share the loaded model; the cache file is what is under test
    expected = first.encode(texts)
    second = Embedder(cache_dir=tmp_path)
    np.testing.assert_array_equal(second.encode(list(reversed(texts))), expected[::-1])
    assert second._encoder is None


def test_unknown_model_is_a_clear_error_and_never_downloaded():
    """A model that is neither a directory nor packaged is refused with its name in the message."""
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        resolve_model_path("no-such-model")


def test_model_is_a_setting(monkeypatch, tmp_path):
    """The model comes from the environment setting when not given, and a directory path is accepted."""
    packaged = resolve_model_path("all-MiniLM-L6-v2")
    monkeypatch.setenv("CREATOR_MATCHER_EMBEDDING_MODEL", str(packaged))
    assert Embedder().model == str(packaged)
    assert resolve_model_path(str(packaged)) == packaged
