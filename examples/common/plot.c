// examples/common/plot.c - see plot.h.
#include "plot.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef SCVRL_STB
#include <stb/stb_image_write.h>

static const unsigned char plot__colors[6][3] = {
    { 31, 119, 180 }, { 214, 39, 40 }, { 44, 160, 44 }, { 255, 127, 14 }, { 148, 103, 189 }, { 23, 190, 207 },
};
#endif


static void plot__px(unsigned char *img, int w, int h, int x, int y, const unsigned char *c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    memcpy(img + ((size_t)y * w + x) * 3, c, 3);
}

static void plot__line(unsigned char *img, int w, int h, int x0, int y0, int x1, int y1, const unsigned char *c) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) {
        plot__px(img, w, h, x0, y0, c); plot__px(img, w, h, x0, y0 + 1, c);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) { e += dy; x0 += sx; }
        if (e2 <= dx) { e += dx; y0 += sy; }
    }
}

int plot_curves(const char *path, int w, int h, const float *const *y, int n_series, int n, char *err, size_t errlen) {
#ifndef SCVRL_STB
    (void)w; (void)h; (void)y; (void)n_series; (void)n;
    snprintf(err, errlen, "%s: not written: built without stb (install libstb-dev, then make)", path);
    return -1;
#else
    unsigned char *img = (unsigned char *)malloc((size_t)w * h * 3);
    if (!img) { snprintf(err, errlen, "%s: out of memory", path); return -1; }
    memset(img, 255, (size_t)w * h * 3);
    float lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < n; i++) if (isfinite(y[s][i])) { lo = fminf(lo, y[s][i]); hi = fmaxf(hi, y[s][i]); }
    if (!(hi > lo)) { lo = isfinite(lo) ? lo - 1 : 0; hi = lo + 2; }
    int m = 24, pw = w - 2 * m, ph = h - 2 * m;
    static const unsigned char grid[3] = { 225, 225, 225 }, axis[3] = { 90, 90, 90 };
    for (int k = 0; k <= 4; k++) {
        int gy = m + ph * k / 4, gx = m + pw * k / 4;
        plot__line(img, w, h, m, gy, m + pw, gy, grid);
        plot__line(img, w, h, gx, m, gx, m + ph, grid);
    }
    plot__line(img, w, h, m, m + ph, m + pw, m + ph, axis);
    plot__line(img, w, h, m, m, m, m + ph, axis);
    for (int s = 0; s < n_series; s++) {
        const unsigned char *c = plot__colors[s % 6];
        int px = -1, py = -1;
        for (int i = 0; i < n; i++) {
            if (!isfinite(y[s][i])) { px = -1; continue; }
            int x = m + (n > 1 ? (int)((double)pw * i / (n - 1)) : 0);
            int yy = m + ph - (int)((double)ph * (y[s][i] - lo) / (hi - lo));
            if (px >= 0) plot__line(img, w, h, px, py, x, yy, c); else plot__px(img, w, h, x, yy, c);
            px = x; py = yy;
        }
        for (int a = 0; a < 10; a++) for (int b = 0; b < 10; b++) plot__px(img, w, h, w - m - 14 * (n_series - s) + a, 6 + b, c);
    }
    int ok = stbi_write_png(path, w, h, 3, img, w * 3);
    free(img);
    if (!ok) { snprintf(err, errlen, "%s: cannot write the PNG (check the folder exists and is writable)", path); return -1; }
    return 0;
#endif
}
