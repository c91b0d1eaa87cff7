"""STM (space-time memory networks, Oh et al. 2019) for thesis Table 6.5: a weight-compatible
reimplementation (``model``), the official test protocol with synthetic memory injection (``inference``,
``sequence``) and a tiny from-scratch trainer for the CPU preset (``train_tiny``)."""
