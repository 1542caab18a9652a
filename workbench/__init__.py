"""jpki-workbench: a protocol workbench for the My Number Card PKI (JPKI, 公的個人認証サービス).

Layers (see ARCHITECTURE): ``apdu``/``tlv`` (bytes), ``card`` (the virtual card and phone
token), ``transport`` (how bytes travel), ``client`` (host side), ``pki`` (the simulated
authority). Everything here is a simulation with synthetic people and keys; nothing it
issues chains to J-LIS.
"""

__version__ = "0.1.0"
