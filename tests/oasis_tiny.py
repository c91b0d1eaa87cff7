"""The tiny OASIS configuration shared by the OASIS test modules (32x32, a few channels)."""
TINY = dict(semantic_nc=7, crop_size=32, ch_G=2, z_dim=8, spade_hidden=8, d_channels=(8, 8, 16, 16),
            d_last_channels=8, batch_size=2)
