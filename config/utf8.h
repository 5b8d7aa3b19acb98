/* utf8.h — the one check of a UTF-8 sequence, for every layer (strict JSON intake, error
 * messages, JSON text written by hand, connector answers). */
#ifndef DG_CONFIG_UTF8_H
#define DG_CONFIG_UTF8_H

#include <stddef.h>

/* Length (1 to 4) of the valid UTF-8 sequence at s, reading at most n bytes; 0 when it is
 * invalid: a stray continuation byte, a cut sequence, an overlong form, a surrogate, or past
 * U+10FFFF. n must be at least 1. */
size_t dg_utf8_seq(const unsigned char *s, size_t n);

/* 1 if the n bytes at s are all valid UTF-8 sequences (NUL bytes included), else 0. */
int dg_utf8_valid(const char *s, size_t n);

#endif
