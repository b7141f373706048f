# Reference numbers for hikisig.analysis.followup.followup_lmm (random-intercept mixed model).
# Reads followup_lmm_input.csv (written by followup_lmm_input.py) and writes followup_lmm_r.csv:
# per analyte and fit (REML and ML), the fixed effects and their SEs, the log-likelihood, and the
# residual and participant variances of lme4::lmer(value ~ visit * arm + (1 | participant)),
# visit counted from the first visit, arm with "untreated" as the reference level.
# Run from the repository root: Rscript tests/reference/followup_lmm.R
suppressPackageStartupMessages(library(lme4))
here <- "tests/reference"
d <- read.csv(file.path(here, "followup_lmm_input.csv"), stringsAsFactors = FALSE)
d$time <- d$visit - min(d$visit)
d$arm <- factor(d$arm, levels = c("untreated", "treated", "control"))
rename <- c("(Intercept)" = "intercept", "time" = "visit",
            "armtreated" = "arm[treated]", "armcontrol" = "arm[control]",
            "time:armtreated" = "visit:arm[treated]", "time:armcontrol" = "visit:arm[control]")
out <- list()
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5),
                    check.conv.singular = "ignore")
for (a in unique(d$analyte)) {
  for (reml in c(TRUE, FALSE)) {
    fit <- lmer(value ~ time * arm + (1 | participant), data = d[d$analyte == a, ], REML = reml,
                control = ctrl)
    co <- summary(fit)$coefficients
    vc <- as.data.frame(VarCorr(fit))
    out[[length(out) + 1]] <- data.frame(
      analyte = a, reml = reml,
      term = c(unname(rename[rownames(co)]), "logLik", "sigma2", "tau2"),
      estimate = c(co[, "Estimate"], as.numeric(logLik(fit)),
                   vc$vcov[vc$grp == "Residual"], vc$vcov[vc$grp == "participant"]),
      se = c(co[, "Std. Error"], NA, NA, NA))
  }
}
res <- do.call(rbind, out)
write.csv(res, file.path(here, "followup_lmm_r.csv"), row.names = FALSE)
cat(sprintf("R %s, lme4 %s\n", getRversion(), packageVersion("lme4")))
