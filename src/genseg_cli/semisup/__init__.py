"""Objectives on unlabeled images, added to any method's segmentation loss (`ssl=` config group).

`base.UnlabeledObjective` is the interface; `mean_teacher`, `fixmatch` and `cross_teaching` are
our implementations of Mean Teacher (Tarvainen and Valpola, 2017), FixMatch (Sohn et al., 2020)
with UniMatch's feature-perturbation stream (Yang et al., 2023) as an option, and Cross Teaching
between a CNN and a Transformer (Luo et al., 2022), written from the papers.
"""
