// examples/common/plot.h - line plots as PNG (loss curves), with stb_image_write.
#ifndef SCVRL_PLOT_H
#define SCVRL_PLOT_H
#include <stddef.h>

// Plot n_series curves y[s][0..n) against their index into a w x h PNG at path: one colour per
// series (legend: a coloured square per series, top right, in series order), light grid,
// y axis from the data range. 0, or -1 with a message (no stb: says so).
int plot_curves(const char *path, int w, int h, const float *const *y, int n_series, int n, char *err, size_t errlen);

#endif
