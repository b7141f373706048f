# Reference AUC and DeLong CI (pROC) on tests/reference/roc_scores.csv (ties included).
# Run: Rscript tests/reference/delong_proc.R > tests/reference/delong_proc.json
suppressPackageStartupMessages(library(pROC))
d <- read.csv("tests/reference/roc_scores.csv")
r <- pROC::roc(d$y, d$score, levels = c(0, 1), direction = "<", quiet = TRUE)
ci <- pROC::ci.auc(r, method = "delong", conf.level = 0.95)
v <- pROC::var(r, method = "delong")
cat(sprintf('{"R": "%s", "pROC": "%s",\n', R.version.string, packageVersion("pROC")))
cat(sprintf(' "auc": %.12f, "lower": %.12f, "upper": %.12f, "variance": %.15f}\n',
            ci[2], ci[1], ci[3], v))
