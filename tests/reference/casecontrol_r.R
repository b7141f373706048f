# Reference values for hikisig.stats.case_control on tests/reference/casecontrol_data.csv:
# t.test (Welch and Student), wilcox.test (asymptotic, continuity-corrected), p.adjust
# (BH, Holm), lm(log2(y) ~ group * sex + age) with the group effect in each sex and the
# interaction, cor.test (Pearson) and cor (Spearman) within cases.
# Run: Rscript tests/reference/casecontrol_r.R > tests/reference/casecontrol_r.csv
d <- read.csv("tests/reference/casecontrol_data.csv")
d$case <- as.integer(d$group == "case")
d$male <- as.integer(d$sex == "M")
analytes <- c("orn", "arg", "c16", "tied")
rows <- list()
add <- function(analyte, stratum, test, statistic, p, effect = NA, low = NA, high = NA, df = NA) {
  rows[[length(rows) + 1]] <<- data.frame(analyte = analyte, stratum = stratum, test = test,
    statistic = statistic, p = p, effect = effect, low = low, high = high, df = df)
}
for (a in analytes) {
  for (s in c("all", "F", "M")) {
    sub <- if (s == "all") d else d[d$sex == s, ]
    x <- sub[[a]][sub$case == 1]; y <- sub[[a]][sub$case == 0]
    x <- x[!is.na(x)]; y <- y[!is.na(y)]
    w <- t.test(x, y, var.equal = FALSE)
    add(a, s, "welch", w$statistic, w$p.value, df = w$parameter)
    st <- t.test(x, y, var.equal = TRUE)
    add(a, s, "student", st$statistic, st$p.value, df = st$parameter)
    m <- suppressWarnings(wilcox.test(x, y, exact = FALSE, correct = TRUE))
    add(a, s, "mwu", m$statistic, m$p.value)
    lx <- t.test(log(x), log(y), var.equal = FALSE)
    add(a, s, "fold_change", NA, NA, exp(lx$estimate[1] - lx$estimate[2]), exp(lx$conf.int[1]),
        exp(lx$conf.int[2]))
  }
  fit <- lm(log2(d[[a]]) ~ case * male + age, data = d)
  b <- coef(fit); V <- vcov(fit); dfr <- fit$df.residual
  for (s in c("F", "M", "interaction")) {
    cvec <- switch(s, F = c(0, 1, 0, 0, 0), M = c(0, 1, 0, 0, 1), interaction = c(0, 0, 0, 0, 1))
    names(cvec) <- c("(Intercept)", "case", "male", "age", "case:male")
    cvec <- cvec[names(b)]
    est <- sum(cvec * b); se <- sqrt(as.numeric(t(cvec) %*% V %*% cvec))
    tt <- est / se; q <- qt(0.975, dfr)
    add(a, s, "lm", tt, 2 * pt(-abs(tt), dfr), est, est - q * se, est + q * se, dfr)
  }
  cs <- d[d$case == 1 & !is.na(d[[a]]) & !is.na(d$hq25), ]
  ct <- cor.test(cs[[a]], cs$hq25, method = "pearson")
  add(a, "cases", "pearson", ct$statistic, ct$p.value, ct$estimate, ct$conf.int[1], ct$conf.int[2])
  add(a, "cases", "spearman", NA, NA, cor(cs[[a]], cs$hq25, method = "spearman"))
}
out <- do.call(rbind, rows)
out$q <- NA; out$p_holm <- NA
for (key in unique(paste(out$stratum, out$test))) {
  i <- which(paste(out$stratum, out$test) == key & !is.na(out$p))
  out$q[i] <- p.adjust(out$p[i], "BH"); out$p_holm[i] <- p.adjust(out$p[i], "holm")
}
write.csv(out, stdout(), row.names = FALSE)
cat(sprintf("# %s\n", R.version.string))
