"""DeepLab-V3 with a ResNeSt-50 encoder: the downstream semantic-segmentation system of thesis
Ch. 4.3.5 (l.1147, l.1255; Tables 4.6, 4.7), trained on real images plus, for each of them, the
synthetic image generated from the same label map."""
