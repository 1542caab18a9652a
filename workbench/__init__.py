"""jpki-workbench: a protocol workbench for the My Number Card PKI (JPKI, 公的個人認証サービス).

Layers, lowest first (each may import only the ones before it; ``tests/test_layers.py`` keeps
it so): ``apdu``, ``tlv``, ``holder`` (bytes and facts, every protocol value named once);
``card`` (the virtual card and phone token, personalised from outside); ``transport`` (how
bytes travel: in-process, PC/SC, recording, replay); ``timing``; ``client`` (host side);
``pki`` (the simulated authority); ``se`` (the phone's secure element: SCP03);
``analysis`` (trace decoding, DataFrames); ``lifecycle`` (issuance, the service);
``scenarios``; ``widgets``; ``cli``. The protocol reference the code cites ("jpki-card.md 4.3")
is the project's ``docs/``. Everything here is a simulation with synthetic people and keys;
nothing it issues chains to J-LIS.
"""

__version__ = "0.1.0"
