"""Stand-in for the checkout's legacy.py: unpickle a network dict and check it has G_ema."""

import pickle


def load_network_pkl(f):
    data = pickle.Unpickler(f).load()
    assert isinstance(data, dict), "network pickle must hold a dict"
    assert "G_ema" in data, "network pickle has no G_ema"
    return data
