"""Names the istd suite and its report share (a leaf module: imports nothing of the project)."""

#: the published weight sets trained on other data than SIRST (both networks have the three)
CROSS_WEIGHTS = ("nudt_sirst", "irstd_1k", "sirst_aug")
#: the segmentation rules every row is also scored under (the rules table's columns)
RULE_TABLE = ("max_norm", "minmax", "mean_std3", "mean_std5", "mean_std10", "mean_range0.5")
#: each data set's own published weights: the ``published:<name>`` its authors trained on it
#: (the papers' main table reads every data set's column with that set's own file)
OWN_WEIGHTS = {"sirst": "sirst", "nudt_sirst": "nudt_sirst", "irstd1k": "irstd_1k", "sirst_aug": "sirst_aug"}
#: the data set the shipped checkpoints were trained on (``bench train --suite istd``'s default;
#: a checkpoint that records its own training set says so in its row)
SHIPPED_TRAINED_ON = "sirst"
