"""The shared tiny batch: valid, labelled with every scheme."""

from fraudkit.schemes import SCHEMES


def test_tiny_batch_is_valid_and_labelled(tiny_batch):
    batch, labels = tiny_batch
    assert 5_000 <= len(batch.claims) <= 20_000
    assert set(labels.claims.claim_id) == set(batch.claims.claim_id)
    found = set(";".join(labels.claims.fraud_type).split(";")) - {""}
    assert found == set(SCHEMES)
    provider_schemes = [n for n, s in SCHEMES.items() if "provider" in s.actors]
    for name in provider_schemes:
        assert labels.providers.fraud_type.str.contains(name).sum() >= 2, name
