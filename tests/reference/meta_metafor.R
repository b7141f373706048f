# Reference values for hikisig.stats.meta from R's metafor package (rma.uni):
# fixed effect (method = "FE"), DerSimonian-Laird ("DL") and REML ("REML") for each analyte
# of meta_input.csv (yi: estimate, vi: sampling variance). REML is iterated to a tight
# threshold (metafor's default 1e-5 stops Fisher scoring early) so the numbers are the
# REML optimum; metafor's Wald (z) interval and p-value.
# Run: Rscript tests/reference/meta_metafor.R > tests/reference/meta_metafor.csv
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(sub("^--file=", "", args[grep("^--file=", args)]))
d <- read.csv(file.path(here, "meta_input.csv"))
rows <- list()
for (a in unique(d$analyte)) {
  s <- d[d$analyte == a, ]
  for (m in c("FE", "DL", "REML")) {
    fit <- rma(yi, vi, data = s, method = m,
               control = list(threshold = 1e-14, maxiter = 10000))
    rows[[length(rows) + 1]] <- data.frame(analyte = a, method = m, k = fit$k,
      estimate = as.numeric(fit$beta), se = fit$se, ci_low = fit$ci.lb, ci_high = fit$ci.ub,
      p = fit$pval, tau2 = fit$tau2, I2 = fit$I2, QE = fit$QE, QEp = fit$QEp)
  }
}
out <- do.call(rbind, rows)
write.csv(out, stdout(), row.names = FALSE, quote = FALSE)
cat(sprintf("# metafor %s, %s\n", packageVersion("metafor"), R.version.string))
