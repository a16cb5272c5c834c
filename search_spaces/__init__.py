"""Search spaces: one Optuna define-by-run function per dataset x architecture.

Each function takes an `optuna.Trial`, suggests the hyperparameters it searches (names are
fields of `study.config.Hyperparams`, or a field and a choice, such as `lr_sgd`: see
`common.PER_CHOICE`) and returns the constants it fixes (or None). They
hold no computation: "what we search" stays apart from "what we chose".
"""
