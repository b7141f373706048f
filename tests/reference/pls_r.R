# Reference values for PLS regression (tests/test_pls_reference.py) on tests/reference/pls_data.csv:
# pls::plsr(y ~ X, ncomp = 3, scale = FALSE) (kernel PLS; X and y centred), fitted values and
# coefficients for 1..3 components, and 5-fold CV predictions with consecutive segments.
# Run: Rscript tests/reference/pls_r.R > tests/reference/pls_r.csv
suppressPackageStartupMessages(library(pls))
d <- read.csv("tests/reference/pls_data.csv")
X <- as.matrix(d[, -1])
y <- d$y
fit <- plsr(y ~ X, ncomp = 3, scale = FALSE, validation = "none")
cv <- plsr(y ~ X, ncomp = 3, scale = FALSE, validation = "CV", segments = 5,
           segment.type = "consecutive")
rows <- list()
for (a in 1:3) {
  rows[[length(rows) + 1]] <- data.frame(kind = "fitted", ncomp = a, index = seq_along(y),
                                         value = fit$fitted.values[, 1, a])
  rows[[length(rows) + 1]] <- data.frame(kind = "coefficient", ncomp = a, index = seq_len(ncol(X)),
                                         value = fit$coefficients[, 1, a])
  rows[[length(rows) + 1]] <- data.frame(kind = "cv", ncomp = a, index = seq_along(y),
                                         value = cv$validation$pred[, 1, a])
}
out <- do.call(rbind, rows)
out$value <- sprintf("%.15g", out$value)
write.csv(out, stdout(), row.names = FALSE, quote = FALSE)
