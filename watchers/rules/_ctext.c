/*
 * Word scanning for watchers.rules.text in one C pass (optional; the pure path is the spec).
 *
 * scan(text, cache, fold) finds the words of ``text`` exactly as text._SPLIT_RE (or
 * _SPLIT_RE_MARKS when the text holds a mark of text._MARKS, see is_mark) does, looks each raw word
 * up in ``cache`` (the folding cache dict) and calls ``fold(raw)`` for a word not in it, so the
 * folding rules stay in Python. It returns (folded, keys, odd, starts, ends): each word's cached
 * fold tuple, its key (item 1), the word numbers whose item 3 is true, and the word spans.
 *
 * The pattern, with L = [^\W_] (a letter or digit), A = L (or (?:[^\W_]|[<text._MARKS>]) in the
 * marks variant: a mark continues a run, never starts one) and R = LA*(?:_+LA*)* (a run of them,
 * underscores only between them):
 *
 *   R(?:(?:['\u2019\u2018`\u05f3\-\u2010\u2011\u2013]|[.,](?<=\d[.,])(?=\d))R)*
 *   (?:\.(?<=(?<![^\W_])[^\W_]\.)(?:[^\W_]\.)+)?
 *
 * Everything after the first A+ is optional and each repetition is greedy, so the regex engine's
 * first successful path is the longest at every choice and never backtracks into an earlier
 * step: the scan below takes each step as far as it goes, which is that path. [^\W_] is the
 * regex engine's Unicode \w without '_' (Py_UNICODE_ISALNUM) and \d its Unicode \d
 * (Py_UNICODE_ISDECIMAL); the acronym tail uses [^\W_] even in the marks variant, as the
 * pattern does.
 *
 * Tokenising is a large part of the cost of matching, so the per-word work avoids Python
 * objects where it can:
 *
 * - The word table (module state) sits in front of the cache dict: a word is hashed and compared
 *   in place in the text, so a word seen before costs no substring, str hash or dict lookup. It
 *   only holds (raw word, fold tuple) pairs the dict held, for one dict at a time, on the terms
 *   text.py keeps: the dict only gains entries, or is cleared. The table is emptied when it is
 *   handed another dict; when the dict has fewer entries than when last looked at (before each
 *   word); when a fold callback does anything but add one entry (text._fold_word clears the
 *   dict when full, then adds one); and by forget(), which text.py calls when it clears the
 *   dict, so a clear followed by a refill to the old size outside this module is not missed
 *   either. The table is bounded: it grows to WORDS_MAX slots, a word is looked for in at most
 *   WORD_PROBES of them, and past that a new word takes the place of an old one.
 * - The results are gathered in C arrays and each list is made once at its final length.
 * - Ints for spans, positions and word numbers below INTS_MAX are made once (the module keeps
 *   them) and shared, as CPython shares its small ints (nothing relies on their identity).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define ALWAYS_INLINE inline
#define PREFETCH(p) ((void)(p))
#endif

/* [^\W_] and \d of the code points below 256: one table read for ASCII and Latin-1 text. */
static unsigned char latin1_word[256];
static unsigned char latin1_digit[256];

static ALWAYS_INLINE int
is_w(Py_UCS4 ch)
{
    if (ch < 256) {
        return latin1_word[ch];
    }
    return Py_UNICODE_ISALNUM(ch);
}

/* MARKS begin: made by bench/build_marks.py */
/* Unicode 14.0.0: every code point of general category M. */
#define MARKS_COUNT 299
static const Py_UCS4 MARKS[MARKS_COUNT][2] = {
    {0x300, 0x36F}, {0x483, 0x489}, {0x591, 0x5BD}, {0x5BF, 0x5BF}, {0x5C1, 0x5C2},
    {0x5C4, 0x5C5}, {0x5C7, 0x5C7}, {0x610, 0x61A}, {0x64B, 0x65F}, {0x670, 0x670},
    {0x6D6, 0x6DC}, {0x6DF, 0x6E4}, {0x6E7, 0x6E8}, {0x6EA, 0x6ED}, {0x711, 0x711},
    {0x730, 0x74A}, {0x7A6, 0x7B0}, {0x7EB, 0x7F3}, {0x7FD, 0x7FD}, {0x816, 0x819},
    {0x81B, 0x823}, {0x825, 0x827}, {0x829, 0x82D}, {0x859, 0x85B}, {0x898, 0x89F},
    {0x8CA, 0x8E1}, {0x8E3, 0x903}, {0x93A, 0x93C}, {0x93E, 0x94F}, {0x951, 0x957},
    {0x962, 0x963}, {0x981, 0x983}, {0x9BC, 0x9BC}, {0x9BE, 0x9C4}, {0x9C7, 0x9C8},
    {0x9CB, 0x9CD}, {0x9D7, 0x9D7}, {0x9E2, 0x9E3}, {0x9FE, 0x9FE}, {0xA01, 0xA03},
    {0xA3C, 0xA3C}, {0xA3E, 0xA42}, {0xA47, 0xA48}, {0xA4B, 0xA4D}, {0xA51, 0xA51},
    {0xA70, 0xA71}, {0xA75, 0xA75}, {0xA81, 0xA83}, {0xABC, 0xABC}, {0xABE, 0xAC5},
    {0xAC7, 0xAC9}, {0xACB, 0xACD}, {0xAE2, 0xAE3}, {0xAFA, 0xAFF}, {0xB01, 0xB03},
    {0xB3C, 0xB3C}, {0xB3E, 0xB44}, {0xB47, 0xB48}, {0xB4B, 0xB4D}, {0xB55, 0xB57},
    {0xB62, 0xB63}, {0xB82, 0xB82}, {0xBBE, 0xBC2}, {0xBC6, 0xBC8}, {0xBCA, 0xBCD},
    {0xBD7, 0xBD7}, {0xC00, 0xC04}, {0xC3C, 0xC3C}, {0xC3E, 0xC44}, {0xC46, 0xC48},
    {0xC4A, 0xC4D}, {0xC55, 0xC56}, {0xC62, 0xC63}, {0xC81, 0xC83}, {0xCBC, 0xCBC},
    {0xCBE, 0xCC4}, {0xCC6, 0xCC8}, {0xCCA, 0xCCD}, {0xCD5, 0xCD6}, {0xCE2, 0xCE3},
    {0xD00, 0xD03}, {0xD3B, 0xD3C}, {0xD3E, 0xD44}, {0xD46, 0xD48}, {0xD4A, 0xD4D},
    {0xD57, 0xD57}, {0xD62, 0xD63}, {0xD81, 0xD83}, {0xDCA, 0xDCA}, {0xDCF, 0xDD4},
    {0xDD6, 0xDD6}, {0xDD8, 0xDDF}, {0xDF2, 0xDF3}, {0xE31, 0xE31}, {0xE34, 0xE3A},
    {0xE47, 0xE4E}, {0xEB1, 0xEB1}, {0xEB4, 0xEBC}, {0xEC8, 0xECD}, {0xF18, 0xF19},
    {0xF35, 0xF35}, {0xF37, 0xF37}, {0xF39, 0xF39}, {0xF3E, 0xF3F}, {0xF71, 0xF84},
    {0xF86, 0xF87}, {0xF8D, 0xF97}, {0xF99, 0xFBC}, {0xFC6, 0xFC6}, {0x102B, 0x103E},
    {0x1056, 0x1059}, {0x105E, 0x1060}, {0x1062, 0x1064}, {0x1067, 0x106D}, {0x1071, 0x1074},
    {0x1082, 0x108D}, {0x108F, 0x108F}, {0x109A, 0x109D}, {0x135D, 0x135F}, {0x1712, 0x1715},
    {0x1732, 0x1734}, {0x1752, 0x1753}, {0x1772, 0x1773}, {0x17B4, 0x17D3}, {0x17DD, 0x17DD},
    {0x180B, 0x180D}, {0x180F, 0x180F}, {0x1885, 0x1886}, {0x18A9, 0x18A9}, {0x1920, 0x192B},
    {0x1930, 0x193B}, {0x1A17, 0x1A1B}, {0x1A55, 0x1A5E}, {0x1A60, 0x1A7C}, {0x1A7F, 0x1A7F},
    {0x1AB0, 0x1ACE}, {0x1B00, 0x1B04}, {0x1B34, 0x1B44}, {0x1B6B, 0x1B73}, {0x1B80, 0x1B82},
    {0x1BA1, 0x1BAD}, {0x1BE6, 0x1BF3}, {0x1C24, 0x1C37}, {0x1CD0, 0x1CD2}, {0x1CD4, 0x1CE8},
    {0x1CED, 0x1CED}, {0x1CF4, 0x1CF4}, {0x1CF7, 0x1CF9}, {0x1DC0, 0x1DFF}, {0x20D0, 0x20F0},
    {0x2CEF, 0x2CF1}, {0x2D7F, 0x2D7F}, {0x2DE0, 0x2DFF}, {0x302A, 0x302F}, {0x3099, 0x309A},
    {0xA66F, 0xA672}, {0xA674, 0xA67D}, {0xA69E, 0xA69F}, {0xA6F0, 0xA6F1}, {0xA802, 0xA802},
    {0xA806, 0xA806}, {0xA80B, 0xA80B}, {0xA823, 0xA827}, {0xA82C, 0xA82C}, {0xA880, 0xA881},
    {0xA8B4, 0xA8C5}, {0xA8E0, 0xA8F1}, {0xA8FF, 0xA8FF}, {0xA926, 0xA92D}, {0xA947, 0xA953},
    {0xA980, 0xA983}, {0xA9B3, 0xA9C0}, {0xA9E5, 0xA9E5}, {0xAA29, 0xAA36}, {0xAA43, 0xAA43},
    {0xAA4C, 0xAA4D}, {0xAA7B, 0xAA7D}, {0xAAB0, 0xAAB0}, {0xAAB2, 0xAAB4}, {0xAAB7, 0xAAB8},
    {0xAABE, 0xAABF}, {0xAAC1, 0xAAC1}, {0xAAEB, 0xAAEF}, {0xAAF5, 0xAAF6}, {0xABE3, 0xABEA},
    {0xABEC, 0xABED}, {0xFB1E, 0xFB1E}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0x101FD, 0x101FD},
    {0x102E0, 0x102E0}, {0x10376, 0x1037A}, {0x10A01, 0x10A03}, {0x10A05, 0x10A06},
    {0x10A0C, 0x10A0F}, {0x10A38, 0x10A3A}, {0x10A3F, 0x10A3F}, {0x10AE5, 0x10AE6},
    {0x10D24, 0x10D27}, {0x10EAB, 0x10EAC}, {0x10F46, 0x10F50}, {0x10F82, 0x10F85},
    {0x11000, 0x11002}, {0x11038, 0x11046}, {0x11070, 0x11070}, {0x11073, 0x11074},
    {0x1107F, 0x11082}, {0x110B0, 0x110BA}, {0x110C2, 0x110C2}, {0x11100, 0x11102},
    {0x11127, 0x11134}, {0x11145, 0x11146}, {0x11173, 0x11173}, {0x11180, 0x11182},
    {0x111B3, 0x111C0}, {0x111C9, 0x111CC}, {0x111CE, 0x111CF}, {0x1122C, 0x11237},
    {0x1123E, 0x1123E}, {0x112DF, 0x112EA}, {0x11300, 0x11303}, {0x1133B, 0x1133C},
    {0x1133E, 0x11344}, {0x11347, 0x11348}, {0x1134B, 0x1134D}, {0x11357, 0x11357},
    {0x11362, 0x11363}, {0x11366, 0x1136C}, {0x11370, 0x11374}, {0x11435, 0x11446},
    {0x1145E, 0x1145E}, {0x114B0, 0x114C3}, {0x115AF, 0x115B5}, {0x115B8, 0x115C0},
    {0x115DC, 0x115DD}, {0x11630, 0x11640}, {0x116AB, 0x116B7}, {0x1171D, 0x1172B},
    {0x1182C, 0x1183A}, {0x11930, 0x11935}, {0x11937, 0x11938}, {0x1193B, 0x1193E},
    {0x11940, 0x11940}, {0x11942, 0x11943}, {0x119D1, 0x119D7}, {0x119DA, 0x119E0},
    {0x119E4, 0x119E4}, {0x11A01, 0x11A0A}, {0x11A33, 0x11A39}, {0x11A3B, 0x11A3E},
    {0x11A47, 0x11A47}, {0x11A51, 0x11A5B}, {0x11A8A, 0x11A99}, {0x11C2F, 0x11C36},
    {0x11C38, 0x11C3F}, {0x11C92, 0x11CA7}, {0x11CA9, 0x11CB6}, {0x11D31, 0x11D36},
    {0x11D3A, 0x11D3A}, {0x11D3C, 0x11D3D}, {0x11D3F, 0x11D45}, {0x11D47, 0x11D47},
    {0x11D8A, 0x11D8E}, {0x11D90, 0x11D91}, {0x11D93, 0x11D97}, {0x11EF3, 0x11EF6},
    {0x16AF0, 0x16AF4}, {0x16B30, 0x16B36}, {0x16F4F, 0x16F4F}, {0x16F51, 0x16F87},
    {0x16F8F, 0x16F92}, {0x16FE4, 0x16FE4}, {0x16FF0, 0x16FF1}, {0x1BC9D, 0x1BC9E},
    {0x1CF00, 0x1CF2D}, {0x1CF30, 0x1CF46}, {0x1D165, 0x1D169}, {0x1D16D, 0x1D172},
    {0x1D17B, 0x1D182}, {0x1D185, 0x1D18B}, {0x1D1AA, 0x1D1AD}, {0x1D242, 0x1D244},
    {0x1DA00, 0x1DA36}, {0x1DA3B, 0x1DA6C}, {0x1DA75, 0x1DA75}, {0x1DA84, 0x1DA84},
    {0x1DA9B, 0x1DA9F}, {0x1DAA1, 0x1DAAF}, {0x1E000, 0x1E006}, {0x1E008, 0x1E018},
    {0x1E01B, 0x1E021}, {0x1E023, 0x1E024}, {0x1E026, 0x1E02A}, {0x1E130, 0x1E136},
    {0x1E2AE, 0x1E2AE}, {0x1E2EC, 0x1E2EF}, {0x1E8D0, 0x1E8D6}, {0x1E944, 0x1E94A},
    {0xE0100, 0xE01EF},
};
/* MARKS end */

/* A combining mark (text._MARKS: every code point of general category M), by binary search in
 * MARKS. Python's \w leaves marks out; a word keeps them (vowel signs, viramas, accents). */
static ALWAYS_INLINE int
is_mark(Py_UCS4 ch)
{
    if (ch < MARKS[0][0] || ch > MARKS[MARKS_COUNT - 1][1]) {
        return 0;
    }
    Py_ssize_t lo = 0, hi = MARKS_COUNT - 1;
    while (lo <= hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (ch < MARKS[mid][0]) {
            hi = mid - 1;
        }
        else if (ch > MARKS[mid][1]) {
            lo = mid + 1;
        }
        else {
            return 1;
        }
    }
    return 0;
}

static ALWAYS_INLINE int
is_word(Py_UCS4 ch, int marks)
{
    if (ch < 256) {
        return latin1_word[ch];
    }
    if (Py_UNICODE_ISALNUM(ch)) {
        return 1;
    }
    return marks && is_mark(ch);
}

static ALWAYS_INLINE int
is_d(Py_UCS4 ch)
{
    if (ch < 256) {
        return latin1_digit[ch];
    }
    return Py_UNICODE_ISDECIMAL(ch);
}

static ALWAYS_INLINE int
is_joiner(Py_UCS4 ch)
{
    switch (ch) {
    case '\'': case 0x2019: case 0x2018: case '`': case 0x5F3:
    case '-': case 0x2010: case 0x2011: case 0x2013:
        return 1;
    default:
        return 0;
    }
}

/* The end of the word that starts at s (text[s] is a word character). */
static ALWAYS_INLINE Py_ssize_t
word_end(int kind, const void *data, Py_ssize_t n, Py_ssize_t s, int marks)
{
    Py_ssize_t i = s + 1;
    for (;;) {
        while (i < n && is_word(PyUnicode_READ(kind, data, i), marks)) {
            i++;
        }
        /* A joiner counts only with a word character after it. */
        if (i + 1 >= n) {
            break;
        }
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        Py_UCS4 next = PyUnicode_READ(kind, data, i + 1);
        if (c == '_') {
            /* So does a run of underscores: at a word's end it is no part of the word. */
            Py_ssize_t j = i + 1;
            while (next == '_' && ++j < n) {
                next = PyUnicode_READ(kind, data, j);
            }
            if (j >= n || !is_w(next)) {
                break;
            }
            i = j + 1;
            continue;
        }
        if (is_joiner(c)) {
            if (!is_w(next)) {
                break;
            }
        }
        else if (c == '.' || c == ',') {
            if (!is_d(next) || !is_d(PyUnicode_READ(kind, data, i - 1))) {
                break;
            }
        }
        else {
            break;
        }
        i += 2;
    }
    /* Dotted acronym tail: a single \w at a word boundary, then one or more "\w." pairs. */
    if (i + 2 < n && PyUnicode_READ(kind, data, i) == '.'
        && is_w(PyUnicode_READ(kind, data, i - 1))
        && (i - 1 == 0 || !is_w(PyUnicode_READ(kind, data, i - 2)))) {
        Py_ssize_t j = i + 1;
        while (j + 1 < n && is_w(PyUnicode_READ(kind, data, j))
               && PyUnicode_READ(kind, data, j + 1) == '.') {
            j += 2;
        }
        if (j > i + 1) {
            i = j;
        }
    }
    return i;
}

/* ---- Module state: the word table and the shared ints ---- */

#define WORDS_MIN (1 << 12)   /* slots of a new word table */
#define WORDS_MAX (1 << 17)   /* slots it may grow to (4 MB of slots) */
#define WORD_PROBES 8         /* slots a word may be found in, from its hash's own */
#define INTS_MAX (1 << 16)    /* ints below this are made once and shared */

typedef struct {
    uint64_t hash;        /* word_hash() of the word's code points */
    Py_ssize_t length;    /* its length in code points */
    PyObject *raw;        /* a str equal to the word; NULL in an empty slot */
    PyObject *folded;     /* the fold tuple the cache dict held for the word */
} word_slot;

typedef struct {
    PyObject *cache;        /* the cache dict the word table follows, or NULL */
    Py_ssize_t cache_size;  /* its number of entries when last looked at */
    word_slot *slots;       /* mask + 1 slots, or NULL before the first word */
    size_t mask;
    size_t used;
    PyObject **ints;        /* ints[v] is the int v, or NULL until first needed */
    Py_ssize_t ints_cap;
} ctext_state;

static ALWAYS_INLINE uint64_t
word_hash(int kind, const void *data, Py_ssize_t s, Py_ssize_t e)
{
    /* FNV-1a over code points (so a word hashes alike in texts of any kind), then a mix so
       the low bits, which pick the slot, depend on every code point. */
    uint64_t h = 0xcbf29ce484222325u;
    for (Py_ssize_t j = s; j < e; j++) {
        h = (h ^ PyUnicode_READ(kind, data, j)) * 0x100000001b3u;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93u;
    h ^= h >> 32;
    return h;
}

/* Whether the str raw (of length len) holds the code points text[s:s + len]. */
static ALWAYS_INLINE int
same_word(PyObject *raw, int kind, const void *data, Py_ssize_t s, Py_ssize_t len)
{
    int rkind = PyUnicode_KIND(raw);
    const void *rdata = PyUnicode_DATA(raw);
    if (rkind == kind) {
        return memcmp(rdata, (const char *)data + s * kind, (size_t)len * kind) == 0;
    }
    /* An ASCII word in a two-byte text, say: the str holds it in the narrowest kind. */
    for (Py_ssize_t j = 0; j < len; j++) {
        if (PyUnicode_READ(rkind, rdata, j) != PyUnicode_READ(kind, data, s + j)) {
            return 0;
        }
    }
    return 1;
}

/* Empty the word table. The slots are detached before any reference is released, since a
   release may run Python code that comes back here. */
static void
words_drop(ctext_state *st)
{
    word_slot *slots = st->slots;
    size_t n = slots != NULL ? st->mask + 1 : 0;
    st->slots = NULL;
    st->mask = 0;
    st->used = 0;
    for (size_t j = 0; j < n; j++) {
        if (slots[j].raw != NULL) {
            Py_DECREF(slots[j].raw);
            Py_DECREF(slots[j].folded);
        }
    }
    PyMem_Free(slots);
}

static Py_NO_INLINE void
words_rebind(ctext_state *st, PyObject *cache)
{
    words_drop(st);
    if (st->cache != cache) {
        PyObject *old = st->cache;
        Py_INCREF(cache);
        st->cache = cache;
        Py_XDECREF(old);
    }
    st->cache_size = PyDict_GET_SIZE(cache);
}

/* Make the word table follow ``cache``: emptied when it followed another dict or when the dict
   lost entries (see the top of this file). */
static ALWAYS_INLINE void
words_follow(ctext_state *st, PyObject *cache)
{
    Py_ssize_t size = PyDict_GET_SIZE(cache);
    if (st->cache != cache || size < st->cache_size) {
        words_rebind(st, cache);
    }
    else {
        st->cache_size = size;
    }
}

/* The fold tuple the table holds for text[s:s + len] (borrowed), or NULL. */
static ALWAYS_INLINE PyObject *
words_find(ctext_state *st, uint64_t h, int kind, const void *data, Py_ssize_t s,
           Py_ssize_t len)
{
    word_slot *slots = st->slots;
    if (slots == NULL) {
        return NULL;
    }
    size_t mask = st->mask;
    size_t at = (size_t)h & mask;
    /* Slots are only ever filled or replaced (never emptied one by one), so an empty slot ends
       the search. */
    for (int j = 0; j < WORD_PROBES; j++, at = (at + 1) & mask) {
        word_slot *w = &slots[at];
        if (w->raw == NULL) {
            return NULL;
        }
        if (w->hash == h && w->length == len && same_word(w->raw, kind, data, s, len)) {
            return w->folded;
        }
    }
    return NULL;
}

/* Put a word into the empty slot nearest its own within WORD_PROBES; 0 when there is none. */
static int
words_place(word_slot *slots, size_t mask, const word_slot *w)
{
    size_t at = (size_t)w->hash & mask;
    for (int j = 0; j < WORD_PROBES; j++, at = (at + 1) & mask) {
        if (slots[at].raw == NULL) {
            slots[at] = *w;
            return 1;
        }
    }
    return 0;
}

/* Double the table (or make the first one) while it is below WORDS_MAX; on failure to get
   memory the table stays as it is, as it is only a cache. */
static void
words_grow(ctext_state *st)
{
    size_t old_n = st->slots != NULL ? st->mask + 1 : 0;
    size_t n = old_n ? old_n * 2 : WORDS_MIN;
    if (n > WORDS_MAX) {
        return;
    }
    word_slot *slots = PyMem_Calloc(n, sizeof(word_slot));
    if (slots == NULL) {
        return;
    }
    word_slot *old = st->slots;
    size_t used = 0;
    for (size_t j = 0; j < old_n; j++) {
        if (old[j].raw == NULL) {
            continue;
        }
        if (words_place(slots, n - 1, &old[j])) {
            used++;
        }
        else {
            /* Too crowded around its slot even in the larger table: let the word go. */
            Py_DECREF(old[j].raw);
            Py_DECREF(old[j].folded);
        }
    }
    st->slots = slots;
    st->mask = n - 1;
    st->used = used;
    PyMem_Free(old);
}

/* Remember raw (a str equal to the word, whose hash is h) -> folded, as the dict holds it. */
static void
words_add(ctext_state *st, uint64_t h, PyObject *raw, PyObject *folded)
{
    if (st->slots == NULL || (st->used + 1) * 2 > st->mask + 1) {
        words_grow(st);
        if (st->slots == NULL) {
            return;
        }
    }
    Py_INCREF(raw);
    Py_INCREF(folded);
    word_slot w = {h, PyUnicode_GET_LENGTH(raw), raw, folded};
    if (words_place(st->slots, st->mask, &w)) {
        st->used++;
        return;
    }
    /* No free slot near its own: the word takes the place of the one in its own slot. */
    word_slot *home = &st->slots[(size_t)h & st->mask];
    word_slot gone = *home;
    *home = w;
    Py_DECREF(gone.raw);
    Py_DECREF(gone.folded);
}

/* int_of's slow path: make the int, and keep it when below INTS_MAX. */
static Py_NO_INLINE PyObject *
int_made(ctext_state *st, Py_ssize_t v)
{
    if (v < 0 || v >= INTS_MAX) {
        return PyLong_FromSsize_t(v);
    }
    if (v >= st->ints_cap) {
        Py_ssize_t cap = st->ints_cap ? st->ints_cap : 1024;
        while (cap <= v) {
            cap *= 2;
        }
        if (cap > INTS_MAX) {
            cap = INTS_MAX;
        }
        PyObject **ints = PyMem_Realloc(st->ints, (size_t)cap * sizeof(PyObject *));
        if (ints == NULL) {
            return PyLong_FromSsize_t(v);  /* not shared, which is only slower */
        }
        memset(ints + st->ints_cap, 0, (size_t)(cap - st->ints_cap) * sizeof(PyObject *));
        st->ints = ints;
        st->ints_cap = cap;
    }
    PyObject *o = PyLong_FromSsize_t(v);
    if (o == NULL) {
        return NULL;
    }
    Py_INCREF(o);
    st->ints[v] = o;
    return o;
}

/* The int v (a new reference), shared when below INTS_MAX. */
static ALWAYS_INLINE PyObject *
int_of(ctext_state *st, Py_ssize_t v)
{
    if ((size_t)v < (size_t)st->ints_cap) {
        PyObject *o = st->ints[v];
        if (o != NULL) {
            Py_INCREF(o);
            return o;
        }
    }
    return int_made(st, v);
}

/* ---- Growing C arrays, made into lists once at the end ---- */

static int
grow(void **items, Py_ssize_t *cap, size_t size)
{
    Py_ssize_t n = *cap ? *cap * 2 : 16;
    if ((size_t)n > (size_t)PY_SSIZE_T_MAX / size) {
        PyErr_NoMemory();
        return -1;
    }
    void *p = PyMem_Realloc(*items, (size_t)n * size);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *items = p;
    *cap = n;
    return 0;
}

/* Append value to the array arr of n items (room for cap): 0, or -1 with MemoryError set. */
#define PUSH(arr, n, cap, value)                                                    \
    (((n) < (cap) || grow((void **)&(arr), &(cap), sizeof(*(arr))) == 0)           \
         ? ((arr)[(n)++] = (value), 0)                                              \
         : -1)

/* A first guess at a text's words: about one per six characters in prose. */
static Py_ssize_t
words_guess(PyObject *text)
{
    return PyUnicode_GET_LENGTH(text) / 6 + 16;
}

static int
reserve(void **items, Py_ssize_t *cap, size_t size, Py_ssize_t n)
{
    if ((size_t)n > (size_t)PY_SSIZE_T_MAX / size) {
        PyErr_NoMemory();
        return -1;
    }
    *items = PyMem_Malloc((size_t)n * size);
    if (*items == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *cap = n;
    return 0;
}

/* The token lists hold only strs, ints and tuples of strs, none of which can reach back to a
 * list, so they can never be part of a reference cycle: they are left out of the cyclic
 * garbage collector, whose every collection during a match would otherwise walk each of an
 * article's lists (2% of the instructions of matching at 10,000 realistic rules). Nothing may
 * put another kind of object into them. */
static ALWAYS_INLINE void
untrack(PyObject *list)
{
    if (PyObject_GC_IsTracked(list)) {
        PyObject_GC_UnTrack(list);
    }
}

/* A list of the objects at base, base + stride, ... (n of them; new references). */
static PyObject *
objects_list(const void *base, Py_ssize_t n, size_t stride)
{
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        return NULL;
    }
    const char *at = base;
    for (Py_ssize_t i = 0; i < n; i++, at += stride) {
        PyObject *o = *(PyObject *const *)at;
        Py_INCREF(o);
        PyList_SET_ITEM(list, i, o);
    }
    untrack(list);
    return list;
}

/* A list of the ints at base, base + stride, ... (n Py_ssize_t values). */
static PyObject *
ints_list(ctext_state *st, const void *base, Py_ssize_t n, size_t stride)
{
    PyObject *list = PyList_New(n);
    if (list == NULL) {
        return NULL;
    }
    const char *at = base;
    for (Py_ssize_t i = 0; i < n; i++, at += stride) {
        PyObject *o = int_of(st, *(const Py_ssize_t *)at);
        if (o == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, o);
    }
    untrack(list);
    return list;
}

/* The fold tuples of a text's words, owned until made into the folded list. */
typedef struct {
    PyObject **items;
    Py_ssize_t n, cap;
} fold_array;

static void
fold_array_free(fold_array *a)
{
    for (Py_ssize_t i = 0; i < a->n; i++) {
        Py_DECREF(a->items[i]);
    }
    PyMem_Free(a->items);
    a->items = NULL;
    a->n = a->cap = 0;
}

/* The folded list, taking the array's references. */
static PyObject *
fold_array_list(fold_array *a)
{
    PyObject *list = PyList_New(a->n);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < a->n; i++) {
        PyList_SET_ITEM(list, i, a->items[i]);
    }
    a->n = 0;
    untrack(list);
    return list;
}

static ALWAYS_INLINE int
truth(PyObject *o)
{
    if (o == Py_True) {
        return 1;
    }
    if (o == Py_False) {
        return 0;
    }
    return PyObject_IsTrue(o);
}

/* ---- The word loop ---- */

/* What to do with each word: its fold tuple (checked to be a tuple of at least 4 items; the
 * reference is handed over) and its span; a non-zero return is an error (with the exception
 * set). */
typedef int (*visit_fn)(void *ctx, PyObject *f, Py_ssize_t start, Py_ssize_t end);

/* The fold of the word text[s:e] (a new reference) that the word table does not hold: from the
 * cache dict, else from fold(raw); remembered in the table when it is what the dict holds. */
static Py_NO_INLINE PyObject *
fold_missed(ctext_state *st, const char *fname, PyObject *text, uint64_t h, Py_ssize_t s,
            Py_ssize_t e, PyObject *cache, PyObject *fold)
{
    PyObject *raw = PyUnicode_Substring(text, s, e);
    if (raw == NULL) {
        return NULL;
    }
    int held = 1;  /* whether the dict holds f for raw */
    PyObject *f = PyDict_GetItemWithError(cache, raw);
    if (f != NULL) {
        Py_INCREF(f);
    }
    else if (PyErr_Occurred()) {
        Py_DECREF(raw);
        return NULL;
    }
    else {
        Py_ssize_t before = PyDict_GET_SIZE(cache);
        f = PyObject_CallOneArg(fold, raw);
        if (f == NULL) {
            Py_DECREF(raw);
            return NULL;
        }
        /* text._fold_word adds one entry, the word's; anything else (it clears the dict when
           full) empties the table, which then holds nothing the dict may have lost. */
        if (PyDict_GET_SIZE(cache) != before + 1) {
            words_rebind(st, cache);
        }
        PyObject *now = PyDict_GetItemWithError(cache, raw);
        if (now == NULL && PyErr_Occurred()) {
            Py_DECREF(raw);
            Py_DECREF(f);
            return NULL;
        }
        held = now == f;
    }
    if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) < 4) {
        PyErr_Format(PyExc_TypeError,
                     "%s() folded word must be a tuple (norm, key, parts, odd), "
                     "not %.100s", fname, Py_TYPE(f)->tp_name);
        Py_DECREF(raw);
        Py_DECREF(f);
        return NULL;
    }
    if (held) {
        words_follow(st, cache);
        words_add(st, h, raw, f);
    }
    Py_DECREF(raw);
    return f;
}

/* How far the loop runs ahead (see words_of): a word's slot is requested when it is found, its
   str and fold tuple SLOT_AHEAD words later, and it is folded WORD_AHEAD words after that. */
#define SLOT_AHEAD 4
#define WORD_AHEAD 4
#define RING 16  /* a power of two above WORD_AHEAD + SLOT_AHEAD */
/* A word found ahead of the one being folded: its span and hash. */
typedef struct {
    Py_ssize_t start, end;
    uint64_t hash;
} ahead;

/* Start loading the slot a word's search begins at. */
static ALWAYS_INLINE void
words_prefetch_slot(const ctext_state *st, uint64_t h)
{
    if (st->slots != NULL) {
        PREFETCH(&st->slots[(size_t)h & st->mask]);
    }
}

/* Start loading the str and fold tuple of the word in a word's first slot, if the hashes
   agree (its slot was prefetched a word earlier). */
static ALWAYS_INLINE void
words_prefetch_word(const ctext_state *st, uint64_t h)
{
    if (st->slots != NULL) {
        const word_slot *w = &st->slots[(size_t)h & st->mask];
        if (w->raw != NULL && w->hash == h) {
            PREFETCH(w->raw);
            PREFETCH((const char *)w->raw + 56);  /* where a non-ASCII str's code units start */
            PREFETCH(w->folded);
        }
    }
}

/* The word loop for one kind of text (inlined once per kind, so each reads its code units
 * directly).
 *
 * Finding a word in the word table costs two memory loads that mostly miss the CPU caches
 * (its slot, then the str to compare with), so the loop runs ahead of the word it folds: a
 * word's slot is requested when the word is found, the str and fold tuple in that slot when
 * SLOT_AHEAD more words are found, and the word is folded when WORD_AHEAD more are. The
 * requests are only hints: the fold itself searches the table as it is then.
 */
static ALWAYS_INLINE int
words_of(ctext_state *st, const char *fname, PyObject *text, int kind, const void *data,
         Py_ssize_t n, int marks, PyObject *cache, PyObject *fold, visit_fn visit, void *ctx)
{
    ahead ring[RING];
    unsigned first = 0, count = 0;
    Py_ssize_t i = 0;
    for (;;) {
        /* A word starts at a letter or digit: a mark continues one, never starts it. */
        while (i < n && !is_w(PyUnicode_READ(kind, data, i))) {
            i++;
        }
        if (i < n) {
            Py_ssize_t e = word_end(kind, data, n, i, marks);
            ahead *a = &ring[(first + count) & (RING - 1)];
            a->start = i;
            a->end = e;
            a->hash = word_hash(kind, data, i, e);
            words_prefetch_slot(st, a->hash);
            if (count >= SLOT_AHEAD) {
                words_prefetch_word(st, ring[(first + count - SLOT_AHEAD) & (RING - 1)].hash);
            }
            count++;
            i = e;
            if (count <= SLOT_AHEAD + WORD_AHEAD) {
                continue;
            }
        }
        else if (count == 0) {
            return 0;
        }
        ahead a = ring[first];
        first = (first + 1) & (RING - 1);
        count--;
        words_follow(st, cache);
        PyObject *f = words_find(st, a.hash, kind, data, a.start, a.end - a.start);
        if (f != NULL) {
            Py_INCREF(f);
        }
        else {
            f = fold_missed(st, fname, text, a.hash, a.start, a.end, cache, fold);
            if (f == NULL) {
                return -1;
            }
        }
        if (visit(ctx, f, a.start, a.end) < 0) {
            return -1;
        }
    }
}

/* Whether a two- or four-byte text may hold a mark of is_mark(): a code point from U+0300 on
 * (a superset: every letter of every script past Latin-1). Texts without marks split alike
 * with or without them, so the superset only costs such a text the marks test of each
 * character that is no letter or digit. */
#define MAYBE_MARK(u) ((u) >= 0x300)
static int
has_marks(int kind, const void *data, Py_ssize_t n)
{
    if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *u = data;
        /* Blocks without an early exit, so the compiler can test many code units at once. */
        Py_ssize_t i = 0;
        for (; i + 64 <= n; i += 64) {
            int found = 0;
            for (int j = 0; j < 64; j++) {
                found |= MAYBE_MARK(u[i + j]);
            }
            if (found) {
                return 1;
            }
        }
        for (; i < n; i++) {
            if (MAYBE_MARK(u[i])) {
                return 1;
            }
        }
        return 0;
    }
    const Py_UCS4 *u = data;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (MAYBE_MARK(u[i])) {
            return 1;
        }
    }
    return 0;
}

/*
 * The loop scan(), tokens() and terms() share: check text, cache and fold (messages name
 * ``fname``), find each word, fold it through the word table, the cache or the callback, and
 * hand it to ``visit``.
 */
static int
each_word(ctext_state *st, const char *fname, PyObject *text, PyObject *cache, PyObject *fold,
          visit_fn visit, void *ctx)
{
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "%s() text must be str, not %.100s", fname,
                     Py_TYPE(text)->tp_name);
        return -1;
    }
    if (!PyDict_Check(cache)) {
        PyErr_Format(PyExc_TypeError, "%s() cache must be a dict, not %.100s", fname,
                     Py_TYPE(cache)->tp_name);
        return -1;
    }
    if (!PyCallable_Check(fold)) {
        PyErr_Format(PyExc_TypeError, "%s() fold must be callable, not %.100s", fname,
                     Py_TYPE(fold)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return -1;
    }
#endif
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    switch (kind) {
    case PyUnicode_1BYTE_KIND:
        /* No mark fits in one byte per character. */
        return words_of(st, fname, text, PyUnicode_1BYTE_KIND, data, n, 0, cache, fold, visit,
                        ctx);
    case PyUnicode_2BYTE_KIND:
        if (has_marks(kind, data, n)) {
            return words_of(st, fname, text, PyUnicode_2BYTE_KIND, data, n, 1, cache, fold,
                            visit, ctx);
        }
        return words_of(st, fname, text, PyUnicode_2BYTE_KIND, data, n, 0, cache, fold, visit,
                        ctx);
    default:
        return words_of(st, fname, text, PyUnicode_4BYTE_KIND, data, n,
                        has_marks(kind, data, n), cache, fold, visit, ctx);
    }
}

static ctext_state *
state_of(PyObject *module)
{
    return (ctext_state *)PyModule_GetState(module);
}

/* ---- scan() ---- */

typedef struct {
    Py_ssize_t start, end;
} span;

struct scan_out {
    fold_array folded;
    Py_ssize_t *odd;
    Py_ssize_t odds, odd_cap;
    span *spans;
    Py_ssize_t spans_n, spans_cap;
};

static int
scan_visit(void *ctx, PyObject *f, Py_ssize_t start, Py_ssize_t end)
{
    struct scan_out *out = ctx;
    int is_odd = truth(PyTuple_GET_ITEM(f, 3));
    Py_ssize_t m = out->folded.n;
    if (is_odd < 0 || PUSH(out->folded.items, out->folded.n, out->folded.cap, f) < 0) {
        Py_DECREF(f);
        return -1;
    }
    span sp = {start, end};
    if ((is_odd && PUSH(out->odd, out->odds, out->odd_cap, m) < 0)
        || PUSH(out->spans, out->spans_n, out->spans_cap, sp) < 0) {
        return -1;
    }
    return 0;
}

static PyObject *
ctext_scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "scan() takes 3 arguments (text, cache, fold), got %zd",
                     nargs);
        return NULL;
    }
    ctext_state *st = state_of(module);
    struct scan_out out = {{NULL, 0, 0}, NULL, 0, 0, NULL, 0, 0};
    PyObject *result = NULL;
    PyObject *folded = NULL, *keys = NULL, *odd = NULL, *starts = NULL, *ends = NULL;
    Py_ssize_t guess = PyUnicode_Check(args[0]) ? words_guess(args[0]) : 16;
    if (reserve((void **)&out.folded.items, &out.folded.cap, sizeof(PyObject *), guess) < 0
        || reserve((void **)&out.spans, &out.spans_cap, sizeof(span), guess) < 0
        || each_word(st, "scan", args[0], args[1], args[2], scan_visit, &out) < 0) {
        goto done;
    }
    Py_ssize_t words = out.folded.n;
    keys = PyList_New(words);
    if (keys == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < words; i++) {
        PyObject *k = PyTuple_GET_ITEM(out.folded.items[i], 1);
        Py_INCREF(k);
        PyList_SET_ITEM(keys, i, k);
    }
    untrack(keys);
    if ((odd = ints_list(st, out.odd, out.odds, sizeof(Py_ssize_t))) == NULL
        || (starts = ints_list(st, &out.spans[0].start, words, sizeof(span))) == NULL
        || (ends = ints_list(st, &out.spans[0].end, words, sizeof(span))) == NULL
        || (folded = fold_array_list(&out.folded)) == NULL) {
        goto done;
    }
    result = PyTuple_Pack(5, folded, keys, odd, starts, ends);
done:
    Py_XDECREF(folded);
    Py_XDECREF(keys);
    Py_XDECREF(odd);
    Py_XDECREF(starts);
    Py_XDECREF(ends);
    fold_array_free(&out.folded);
    PyMem_Free(out.odd);
    PyMem_Free(out.spans);
    return result;
}

/*
 * tokens(text, cache, fold) -> (folded, odd, keys, norms, starts, ends, pos, last): the word
 * lists of scan() (folded, odd) and the token lists text.FieldText holds, made in the same
 * pass: a word with an empty key gives no token; a compound (an odd word with parts) gives its
 * own token, then one per part (spans offset by the word's start). Positions count words: a
 * compound takes the position of its first part and its last is that of its last part. pos and
 * last are None when no compound occurs (every token's position is then its number).
 */
typedef struct {
    PyObject *key, *norm;  /* borrowed from the word's fold tuple, which folded holds */
    Py_ssize_t start, end, pos, last;
} token;

struct token_out {
    fold_array folded;
    Py_ssize_t *odd;
    Py_ssize_t odds, odd_cap;
    token *tokens;
    Py_ssize_t tokens_n, tokens_cap;
    Py_ssize_t position;  /* the next token's position */
    int compound;         /* a compound with parts occurred: pos and last are lists */
};

static ALWAYS_INLINE int
add_token(struct token_out *out, PyObject *key, PyObject *norm, Py_ssize_t start,
          Py_ssize_t end, Py_ssize_t pos, Py_ssize_t last)
{
    token t = {key, norm, start, end, pos, last};
    return PUSH(out->tokens, out->tokens_n, out->tokens_cap, t);
}

static int
tokens_visit(void *ctx, PyObject *f, Py_ssize_t start, Py_ssize_t end)
{
    struct token_out *out = ctx;
    int is_odd = truth(PyTuple_GET_ITEM(f, 3));
    Py_ssize_t m = out->folded.n;
    if (is_odd < 0 || PUSH(out->folded.items, out->folded.n, out->folded.cap, f) < 0) {
        Py_DECREF(f);
        return -1;
    }
    if (is_odd && PUSH(out->odd, out->odds, out->odd_cap, m) < 0) {
        return -1;
    }
    PyObject *norm = PyTuple_GET_ITEM(f, 0);
    PyObject *key = PyTuple_GET_ITEM(f, 1);
    if (!is_odd) {
        Py_ssize_t p = out->position++;
        return add_token(out, key, norm, start, end, p, p);
    }
    int keyed = truth(key);
    if (keyed <= 0) {
        return keyed;  /* no key: no token (or an error) */
    }
    PyObject *parts = PyTuple_GET_ITEM(f, 2);
    if (!PyTuple_Check(parts)) {
        PyErr_SetString(PyExc_TypeError, "tokens() folded word's parts must be a tuple");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(parts);
    if (n > 0) {
        out->compound = 1;
    }
    Py_ssize_t p = out->position;
    if (add_token(out, key, norm, start, end, p, n > 0 ? p + n - 1 : p) < 0) {
        return -1;
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *part = PyTuple_GET_ITEM(parts, j);
        if (!PyTuple_Check(part) || PyTuple_GET_SIZE(part) < 4) {
            PyErr_SetString(PyExc_TypeError,
                            "tokens() a part must be a tuple (norm, key, start, end)");
            return -1;
        }
        Py_ssize_t ps = PyLong_AsSsize_t(PyTuple_GET_ITEM(part, 2));
        Py_ssize_t pe = ps == -1 && PyErr_Occurred() ? -1
                        : PyLong_AsSsize_t(PyTuple_GET_ITEM(part, 3));
        if (pe == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (add_token(out, PyTuple_GET_ITEM(part, 1), PyTuple_GET_ITEM(part, 0), start + ps,
                      start + pe, p + j, p + j) < 0) {
            return -1;
        }
    }
    out->position = p + (n > 0 ? n : 1);
    return 0;
}

static PyObject *
ctext_tokens(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "tokens() takes 3 arguments (text, cache, fold), got %zd", nargs);
        return NULL;
    }
    ctext_state *st = state_of(module);
    struct token_out out = {{NULL, 0, 0}, NULL, 0, 0, NULL, 0, 0, 0, 0};
    PyObject *result = NULL;
    PyObject *folded = NULL, *odd = NULL, *keys = NULL, *norms = NULL, *starts = NULL,
             *ends = NULL, *pos = NULL, *last = NULL;
    Py_ssize_t guess = PyUnicode_Check(args[0]) ? words_guess(args[0]) : 16;
    if (reserve((void **)&out.folded.items, &out.folded.cap, sizeof(PyObject *), guess) < 0
        || reserve((void **)&out.tokens, &out.tokens_cap, sizeof(token), guess) < 0
        || each_word(st, "tokens", args[0], args[1], args[2], tokens_visit, &out) < 0) {
        goto done;
    }
    Py_ssize_t n = out.tokens_n;
    const token *t = out.tokens;
    if ((odd = ints_list(st, out.odd, out.odds, sizeof(Py_ssize_t))) == NULL
        || (keys = objects_list(&t->key, n, sizeof(token))) == NULL
        || (norms = objects_list(&t->norm, n, sizeof(token))) == NULL
        || (starts = ints_list(st, &t->start, n, sizeof(token))) == NULL
        || (ends = ints_list(st, &t->end, n, sizeof(token))) == NULL) {
        goto done;
    }
    if (out.compound) {
        if ((pos = ints_list(st, &t->pos, n, sizeof(token))) == NULL
            || (last = ints_list(st, &t->last, n, sizeof(token))) == NULL) {
            goto done;
        }
    }
    /* Last, as it takes the fold tuples (which hold the keys and norms) from the array. */
    if ((folded = fold_array_list(&out.folded)) == NULL) {
        goto done;
    }
    result = PyTuple_Pack(8, folded, odd, keys, norms, starts, ends, pos ? pos : Py_None,
                          last ? last : Py_None);
done:
    Py_XDECREF(folded);
    Py_XDECREF(odd);
    Py_XDECREF(keys);
    Py_XDECREF(norms);
    Py_XDECREF(starts);
    Py_XDECREF(ends);
    Py_XDECREF(pos);
    Py_XDECREF(last);
    fold_array_free(&out.folded);
    PyMem_Free(out.odd);
    PyMem_Free(out.tokens);
    return result;
}

/*
 * terms(text, cache, fold, out): add to the set ``out`` what the lookup index holds of text's
 * words: each word's norm and key (items 0 and 1) and its parts' norms and keys (the pairs at
 * the front of each item of item 2), for every word whose key is not empty, as the tokens of a
 * FieldText would give them. The words are found and folded as by scan(); no list is built.
 */
static int
terms_add(PyObject *out, PyObject *f)
{
    PyObject *key = PyTuple_GET_ITEM(f, 1);
    if (!PyUnicode_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "terms() folded word's key must be str");
        return -1;
    }
    if (PyUnicode_GET_LENGTH(key) == 0) {
        return 0;  /* no token: the word is dropped, parts and all */
    }
    if (PySet_Add(out, PyTuple_GET_ITEM(f, 0)) < 0 || PySet_Add(out, key) < 0) {
        return -1;
    }
    PyObject *parts = PyTuple_GET_ITEM(f, 2);
    if (!PyTuple_Check(parts)) {
        PyErr_SetString(PyExc_TypeError, "terms() folded word's parts must be a tuple");
        return -1;
    }
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(parts); j++) {
        PyObject *part = PyTuple_GET_ITEM(parts, j);
        if (!PyTuple_Check(part) || PyTuple_GET_SIZE(part) < 2) {
            PyErr_SetString(PyExc_TypeError, "terms() a part must be a tuple (norm, key, ...)");
            return -1;
        }
        if (PySet_Add(out, PyTuple_GET_ITEM(part, 0)) < 0
            || PySet_Add(out, PyTuple_GET_ITEM(part, 1)) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
terms_visit(void *ctx, PyObject *f, Py_ssize_t Py_UNUSED(start), Py_ssize_t Py_UNUSED(end))
{
    int r = terms_add(ctx, f);
    Py_DECREF(f);
    return r;
}

static PyObject *
ctext_terms(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError,
                     "terms() takes 4 arguments (text, cache, fold, out), got %zd", nargs);
        return NULL;
    }
    PyObject *out = args[3];
    if (!PySet_Check(out)) {
        PyErr_Format(PyExc_TypeError, "terms() out must be a set, not %.100s",
                     Py_TYPE(out)->tp_name);
        return NULL;
    }
    if (each_word(state_of(module), "terms", args[0], args[1], args[2], terms_visit, out) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
ctext_positions(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "positions() takes 1 argument (keys), got %zd", nargs);
        return NULL;
    }
    PyObject *keys = args[0];
    if (!PyList_CheckExact(keys)) {
        PyErr_Format(PyExc_TypeError, "positions() keys must be a list, not %.100s",
                     Py_TYPE(keys)->tp_name);
        return NULL;
    }
    ctext_state *st = state_of(module);
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    /* Keys are exact str, whose hash and equality run no Python code, so nothing can change
       the list while it is read. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        if (!PyUnicode_CheckExact(key)) {
            PyErr_Format(PyExc_TypeError, "positions() keys must be str, not %.100s",
                         Py_TYPE(key)->tp_name);
            goto fail;
        }
        PyObject *at = int_of(st, i);
        if (at == NULL) {
            goto fail;
        }
        PyObject *found = PyDict_GetItemWithError(out, key);
        if (found != NULL) {
            int failed = PyList_Append(found, at);
            Py_DECREF(at);
            if (failed) {
                goto fail;
            }
            continue;
        }
        if (PyErr_Occurred()) {
            Py_DECREF(at);
            goto fail;
        }
        found = PyList_New(1);
        if (found == NULL) {
            Py_DECREF(at);
            goto fail;
        }
        PyList_SET_ITEM(found, 0, at);
        int failed = PyDict_SetItem(out, key, found);
        Py_DECREF(found);
        if (failed) {
            goto fail;
        }
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *
ctext_forget(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    ctext_state *st = state_of(module);
    words_drop(st);
    Py_CLEAR(st->cache);
    Py_RETURN_NONE;
}

/* untrack(*objects): leave each object out of the cyclic garbage collector. Only for objects
 * that can never be part of a reference cycle, which nothing they hold leads back to (a set of
 * strs, a live story's parts, what a poll keeps of each article until it is written);
 * reference counting still frees them. Each tracked object that outlives two young
 * collections counts toward the next full one, which walks the whole heap. */
/* Where each run of whitespace that follows a digit ends, in text (watchers.rules.lookup's
 * number marks): a digit as re's \d reads one (Py_UNICODE_ISDECIMAL), or a character of the
 * second plane Python's data calls unprintable (the regex engine's newer data may call it a
 * digit); whitespace as re's \s reads it (Py_UNICODE_ISSPACE); a run that ends the text is
 * left out. The same places as the pure path's two patterns find. */
static PyObject *
ctext_digit_gaps(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "digit_gaps() takes 1 argument (text), got %zd", nargs);
        return NULL;
    }
    PyObject *text = args[0];
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "digit_gaps() text must be str, not %.100s",
                     Py_TYPE(text)->tp_name);
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t i = 0;
    while (i < n) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        i++;
        if (ch < 256 ? !latin1_digit[ch]
                     : !(Py_UNICODE_ISDECIMAL(ch)
                         || (ch > 0xFFFF && ch <= 0x1FFFF && !Py_UNICODE_ISPRINTABLE(ch)))) {
            continue;
        }
        Py_ssize_t j = i;
        while (j < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, j))) {
            j++;
        }
        if (j == i || j == n) {
            continue;
        }
        PyObject *at = PyLong_FromSsize_t(j);
        if (at == NULL || PyList_Append(out, at) < 0) {
            Py_XDECREF(at);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(at);
        i = j;  /* whitespace is no digit */
    }
    return out;
}

static PyObject *
ctext_untrack(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyObject *o = args[i];
        if (PyObject_IS_GC(o) && PyObject_GC_IsTracked(o)) {
            PyObject_GC_UnTrack(o);
        }
    }
    Py_RETURN_NONE;
}

/* ---- Transliteration keys ----------------------------------------------------------------------
 *
 * translit(word) is variants.translit_key of an ASCII word (None for any other: the Python
 * path, which romanises Cyrillic first, takes those): apostrophes dropped; the spellings of
 * several letters of variants._COARSE_MULTI replaced by their class, leftmost first and, at one
 * place, the first of them in that pattern's order that is there (as the regex alternation
 * takes them); the single letters of _COARSE_SINGLE replaced; a final "ov" after more than two
 * letters made "iv"; and each run of one character but a line break made one (variants._DOUBLE:
 * "." is any character but a line break). A property test compares it with the Python path.
 * A new word needs its key once; in Python the regex substitution called back into Python for
 * every spelling it replaced. */

static const struct {
    const char *spelling;
    unsigned char length;
    char cls;
} coarse_multi[] = {
    {"tsch", 4, 'h'}, {"szcz", 4, 's'}, {"schtsch", 7, 's'}, {"sch", 3, 's'}, {"tch", 3, 'h'},
    {"cz", 2, 'h'}, {"sz", 2, 's'}, {"rz", 2, 's'}, {"shch", 4, 's'}, {"kh", 2, 'h'},
    {"ch", 2, 'h'}, {"zh", 2, 's'}, {"sh", 2, 's'}, {"ts", 2, 's'}, {"tz", 2, 's'},
    {"ou", 2, 'u'},
};
static char coarse_single[128];

static PyObject *
ctext_translit(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "translit() takes one str");
        return NULL;
    }
    PyObject *word = args[0];
    if (!PyUnicode_IS_ASCII(word)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(word);
    const char *src = (const char *)PyUnicode_1BYTE_DATA(word);
    char small[2 * 64];
    char *a = n <= 64 ? small : PyMem_Malloc(2 * (size_t)n);
    if (a == NULL) {
        return PyErr_NoMemory();
    }
    char *b = a + (n <= 64 ? 64 : n);
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (src[i] != '\'') {
            a[k++] = src[i];
        }
    }
    Py_ssize_t j = 0;
    for (Py_ssize_t i = 0; i < k;) {
        size_t t = 0;
        for (; t < sizeof coarse_multi / sizeof coarse_multi[0]; t++) {
            Py_ssize_t len = coarse_multi[t].length;
            if (len <= k - i && a[i] == coarse_multi[t].spelling[0]
                    && memcmp(a + i, coarse_multi[t].spelling, (size_t)len) == 0) {
                break;
            }
        }
        if (t < sizeof coarse_multi / sizeof coarse_multi[0]) {
            b[j++] = coarse_multi[t].cls;
            i += coarse_multi[t].length;
        }
        else {
            b[j++] = coarse_single[(unsigned char)a[i]];
            i++;
        }
    }
    if (j > 4 && b[j - 2] == 'o' && b[j - 1] == 'v') {
        b[j - 2] = 'i';
    }
    Py_ssize_t o = 0;
    for (Py_ssize_t i = 0; i < j; i++) {
        if (o == 0 || b[i] != b[o - 1] || b[i] == '\n') {
            b[o++] = b[i];
        }
    }
    PyObject *out = PyUnicode_FromStringAndSize(b, o);
    if (a != small) {
        PyMem_Free(a);
    }
    return out;
}

/* ---- Similar words: which pairs of (query, choice) reach an Indel similarity ------------------
 *
 * rapidfuzz's normalised Indel similarity of a and b is 1 - D / (|a| + |b|), where D, the Indel
 * distance, is |a| + |b| - 2 LCS(a, b). A fuzzy vocabulary compares every word it has not met
 * with every term: with a thousand terms that batch was most of the cost of an article's new
 * words. Two bounds that need no LCS turn nearly every pair away first: D is at least the
 * difference of the lengths (the choices are packed by length, so only the lengths within reach
 * are visited), and at least the number of letters one word holds and the other does not (each
 * such letter is deleted or inserted); the letters are kept as a 64-bit mask of code point & 63,
 * whose XOR has no more bits set than there are such letters. A pair that passes both is decided
 * by the LCS itself and the same double expression as rapidfuzz's (1.0 - D / (|a| + |b|) >=
 * cutoff), so the pairs are those rapidfuzz's cdist scores at or above the cutoff (a property
 * test compares the two; rapidfuzz itself turns away a pair exactly at the cutoff, which is why
 * callers leave variants.CUTOFF_SLACK below it).
 *
 * pack_choices(choices) copies the choices once into a bytes object: a header (count, longest
 * length), where each length's choices start, per choice its mask, length, number and offset,
 * then every code point. similar(queries, pack, cutoff) takes the queries against it. */

typedef struct {
    uint64_t mask;
    int64_t len;
    int64_t number;
    int64_t off;
} choice_t;

static uint64_t
letters_mask(const Py_UCS4 *s, Py_ssize_t n)
{
    uint64_t m = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        m |= (uint64_t)1 << (s[i] & 63);
    }
    return m;
}

static ALWAYS_INLINE int
bits_set(uint64_t x)
{
    /* Without -mpopcnt __builtin_popcountll is a call into libgcc: count in place. */
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}

typedef struct {
    int64_t count;
    int64_t longest;
} pack_head_t;

static int
compare_lengths(const void *a, const void *b)
{
    const choice_t *x = a, *y = b;
    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    return x->number < y->number ? -1 : (x->number > y->number);
}

static PyObject *
ctext_pack_choices(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "pack_choices(choices): a list of str");
        return NULL;
    }
    PyObject *choices = args[0];
    Py_ssize_t n = PyList_GET_SIZE(choices);
    Py_ssize_t chars = 0, longest = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *c = PyList_GET_ITEM(choices, i);
        if (!PyUnicode_Check(c)) {
            PyErr_SetString(PyExc_TypeError, "pack_choices(choices): a list of str");
            return NULL;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(c);
        chars += len;
        if (len > longest) {
            longest = len;
        }
    }
    Py_ssize_t starts = (longest + 2) * (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t head = (Py_ssize_t)sizeof(pack_head_t) + starts;
    Py_ssize_t table_size = n * (Py_ssize_t)sizeof(choice_t);
    PyObject *out = PyBytes_FromStringAndSize(
        NULL, head + table_size + chars * (Py_ssize_t)sizeof(Py_UCS4));
    if (out == NULL) {
        return NULL;
    }
    char *base = PyBytes_AS_STRING(out);
    pack_head_t ph = {(int64_t)n, (int64_t)longest};
    memcpy(base, &ph, sizeof ph);
    int64_t *first = (int64_t *)(base + sizeof(pack_head_t));
    choice_t *table = (choice_t *)(base + head);
    Py_UCS4 *data = (Py_UCS4 *)(base + head + table_size);
    Py_ssize_t off = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *c = PyList_GET_ITEM(choices, i);
        Py_ssize_t len = PyUnicode_GET_LENGTH(c);
        if (len > 0 && PyUnicode_AsUCS4(c, data + off, len, 0) == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        table[i].mask = letters_mask(data + off, len);
        table[i].len = (int64_t)len;
        table[i].number = (int64_t)i;
        table[i].off = (int64_t)off;
        off += len;
    }
    qsort(table, (size_t)n, sizeof(choice_t), compare_lengths);
    /* first[len] is the first choice of that length or longer; first[longest + 1] == n. */
    Py_ssize_t k = 0;
    for (Py_ssize_t len = 0; len <= longest + 1; len++) {
        while (k < n && table[k].len < len) {
            k++;
        }
        first[len] = (int64_t)k;
    }
    return out;
}

/* The length of the longest common subsequence of a and b; row has room for lb + 1 values. */
static Py_ssize_t
lcs_length(const Py_UCS4 *a, Py_ssize_t la, const Py_UCS4 *b, Py_ssize_t lb, Py_ssize_t *row)
{
    for (Py_ssize_t j = 0; j <= lb; j++) {
        row[j] = 0;
    }
    for (Py_ssize_t i = 0; i < la; i++) {
        Py_ssize_t diag = 0;
        Py_UCS4 ch = a[i];
        for (Py_ssize_t j = 1; j <= lb; j++) {
            Py_ssize_t up = row[j];
            if (ch == b[j - 1]) {
                row[j] = diag + 1;
            }
            else if (row[j - 1] > up) {
                row[j] = row[j - 1];
            }
            diag = up;
        }
    }
    return row[lb];
}

static int
append_pair(PyObject *out, Py_ssize_t r, Py_ssize_t c)
{
    PyObject *pair = Py_BuildValue("(nn)", r, c);
    if (pair == NULL) {
        return -1;
    }
    int rc = PyList_Append(out, pair);
    Py_DECREF(pair);
    return rc;
}

static PyObject *
ctext_similar(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "similar(queries, pack, cutoff): list, bytes, float");
        return NULL;
    }
    double cutoff = PyFloat_AsDouble(args[2]);
    if (cutoff == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *queries = args[0];
    const char *base = PyBytes_AS_STRING(args[1]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[1]);
    pack_head_t ph;
    if (size < (Py_ssize_t)sizeof ph) {
        goto not_a_pack;
    }
    memcpy(&ph, base, sizeof ph);
    if (ph.count < 0 || ph.longest < 0 || ph.longest > size || ph.count > size) {
        goto not_a_pack;
    }
    Py_ssize_t n = (Py_ssize_t)ph.count, longest = (Py_ssize_t)ph.longest;
    Py_ssize_t head = (Py_ssize_t)sizeof(pack_head_t) + (longest + 2) * (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t table_size = n * (Py_ssize_t)sizeof(choice_t);
    if (head + table_size > size) {
        goto not_a_pack;
    }
    const int64_t *first = (const int64_t *)(base + sizeof(pack_head_t));
    const choice_t *table = (const choice_t *)(base + head);
    const Py_UCS4 *data = (const Py_UCS4 *)(base + head + table_size);
    Py_ssize_t data_len = (size - head - table_size) / (Py_ssize_t)sizeof(Py_UCS4);
    for (Py_ssize_t c = 0; c < n; c++) {
        if (table[c].len < 0 || table[c].len > longest || table[c].off < 0
            || table[c].off + table[c].len > data_len || table[c].number < 0
            || table[c].number >= n) {
            goto not_a_pack;
        }
    }
    for (Py_ssize_t len = 0; len <= longest + 1; len++) {
        if (first[len] < 0 || first[len] > n || (len > 0 && first[len] < first[len - 1])) {
            goto not_a_pack;
        }
    }

    PyObject *out = PyList_New(0);
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t *row = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(longest + 1));
    Py_UCS4 *q = NULL;
    Py_ssize_t q_cap = 0;
    if (row == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    double loose = 1.0 - cutoff;
    Py_ssize_t nq = PyList_GET_SIZE(queries);
    for (Py_ssize_t r = 0; r < nq; r++) {
        PyObject *s = PyList_GET_ITEM(queries, r);
        if (!PyUnicode_Check(s)) {
            PyErr_SetString(PyExc_TypeError, "similar(): queries must be str");
            goto fail;
        }
        Py_ssize_t la = PyUnicode_GET_LENGTH(s);
        if (la > q_cap) {
            PyMem_Free(q);
            q_cap = la;
            q = PyMem_Malloc(sizeof(Py_UCS4) * (size_t)q_cap);
            if (q == NULL) {
                PyErr_NoMemory();
                goto fail;
            }
        }
        if (la > 0 && PyUnicode_AsUCS4(s, q, la, 0) == NULL) {
            goto fail;
        }
        uint64_t qmask = letters_mask(q, la);
        for (Py_ssize_t lb = 0; lb <= longest; lb++) {
            Py_ssize_t lo = (Py_ssize_t)first[lb], hi = (Py_ssize_t)first[lb + 1];
            if (lo == hi) {
                continue;
            }
            Py_ssize_t lensum = la + lb;
            /* The most edits a pair of these lengths may need and still reach the cutoff
             * (rounded generously; the exact test below decides). */
            double slack = loose * (double)lensum + 1e-6;
            Py_ssize_t most = slack < 0.0 ? -1 : (Py_ssize_t)slack;
            Py_ssize_t diff = la > lb ? la - lb : lb - la;
            if (diff > most) {
                continue;
            }
            for (Py_ssize_t c = lo; c < hi; c++) {
                if (bits_set(qmask ^ table[c].mask) > most) {
                    continue;
                }
                double sim = 1.0;
                if (lensum > 0) {
                    Py_ssize_t common = lcs_length(q, la, data + table[c].off, lb, row);
                    sim = 1.0 - (double)(lensum - 2 * common) / (double)lensum;
                }
                if (sim >= cutoff && append_pair(out, r, (Py_ssize_t)table[c].number) < 0) {
                    goto fail;
                }
            }
        }
    }
    PyMem_Free(row);
    PyMem_Free(q);
    return out;
fail:
    PyMem_Free(row);
    PyMem_Free(q);
    Py_DECREF(out);
    return NULL;
not_a_pack:
    PyErr_SetString(PyExc_ValueError, "similar(): not a pack of choices");
    return NULL;
}

/* ---- Many literals at once: an Aho-Corasick automaton packed into a bytes object ----------
 *
 * pack_literals(literals, every) builds, for a list of non-empty bytes literals, the automaton
 * that reads a text byte by byte and knows after each byte which literals end there (Aho and
 * Corasick, 1975: a trie of the literals whose missing moves are resolved through failure links
 * into a full table). Bytes that occur in no literal share one column, so the table has a
 * column per distinct byte of the literals, not 256. find_literals(pack, data[, most]) reads
 * data once and returns {literal number: [end, ...]}: every place where a literal whose
 * ``every`` is true ends, ascending (overlapping occurrences included; the first ``most`` if
 * given), and the first place for any other; a literal not in data is absent. That is what a
 * Hyperscan literal database reports through its callback (with HS_FLAG_SINGLEMATCH for the
 * others), without a call into Python per occurrence or giving the interpreter lock up and
 * taking it back for each.
 *
 * Pack layout (native int32 after a 256-byte class table): the header, the class of each byte,
 * each literal's ``every`` flag (padded to 4 bytes), then per state its row of moves, the first
 * state with outputs on its failure chain (itself included; -1 for none), the next one after
 * that, and where its own outputs begin and how many there are; then the outputs (literal
 * numbers).
 */

#define LIT_MAGIC 0x4c495431 /* "LIT1" */
/* The narrow form: moves of 16 bits (a state number shifted left once, the low bit as above)
 * in rows of a power of two columns, for automata of fewer than 32,768 states. Its table is
 * half the size or less: at 10,000 rules (4,545 states) 291 KB instead of 509 KB, which a
 * core's 512 KB second-level cache holds beside the rest of a match. */
#define LIT_MAGIC_NARROW 0x4c495432 /* "LIT2" */
#define LIT_NARROW_STATES 32767
/* A table larger than this many moves is refused (the caller has another way to scan). */
#define LIT_MAX_MOVES ((Py_ssize_t)1 << 23) /* 32 MiB of moves */

typedef struct {
    int32_t magic, nstates, nclasses, nlits;
} lit_head_t;

/* The 4-byte words the moves take: nstates rows of nclasses columns (the row width of the
 * narrow form), of 4 bytes each, or of 2 in the narrow form. */
static Py_ssize_t
lit_move_words(Py_ssize_t nstates, Py_ssize_t nclasses, int narrow)
{
    return narrow ? (nstates * nclasses + 1) / 2 : nstates * nclasses;
}

static Py_ssize_t
lit_pack_size(Py_ssize_t nstates, Py_ssize_t nclasses, Py_ssize_t nlits, int narrow)
{
    Py_ssize_t every = (nlits + 3) / 4 * 4;
    return (Py_ssize_t)sizeof(lit_head_t) + 256 + every
           + (Py_ssize_t)sizeof(int32_t)
                 * (lit_move_words(nstates, nclasses, narrow) + 4 * nstates + nlits);
}

static PyObject *
ctext_pack_literals(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0]) || !PyList_Check(args[1])
        || PyList_GET_SIZE(args[0]) != PyList_GET_SIZE(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "pack_literals(literals, every): a list of bytes and a list of bools "
                        "as long");
        return NULL;
    }
    PyObject *lits = args[0], *every = args[1];
    Py_ssize_t nlits = PyList_GET_SIZE(lits);
    if (nlits >= INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "pack_literals: too many literals");
        return NULL;
    }
    unsigned char used[256] = {0};
    Py_ssize_t chars = 0;
    for (Py_ssize_t i = 0; i < nlits; i++) {
        PyObject *lit = PyList_GET_ITEM(lits, i);
        if (!PyBytes_Check(lit) || PyBytes_GET_SIZE(lit) == 0) {
            PyErr_SetString(PyExc_ValueError, "pack_literals: every literal is non-empty bytes");
            return NULL;
        }
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(lit);
        Py_ssize_t len = PyBytes_GET_SIZE(lit);
        for (Py_ssize_t j = 0; j < len; j++) {
            used[p[j]] = 1;
        }
        chars += len;
        if (chars >= INT32_MAX / 2) {
            PyErr_SetString(PyExc_ValueError, "pack_literals: the literals are too long");
            return NULL;
        }
    }
    unsigned char cls[256];
    int32_t nclasses = 1; /* class 0: bytes of no literal */
    for (int b = 0; b < 256; b++) {
        cls[b] = used[b] ? (unsigned char)nclasses++ : 0;
    }
    Py_ssize_t cap = chars + 1; /* states: at most one per literal byte, and the root */
    if (cap > LIT_MAX_MOVES / nclasses) {
        PyErr_SetString(PyExc_ValueError, "pack_literals: the automaton would be too large");
        return NULL;
    }
    int32_t *next = PyMem_Malloc(sizeof(int32_t) * (size_t)(cap * nclasses));
    int32_t *fail = PyMem_Malloc(sizeof(int32_t) * (size_t)cap);
    int32_t *ends = PyMem_Malloc(sizeof(int32_t) * (size_t)(nlits ? nlits : 1));
    int32_t *queue = PyMem_Malloc(sizeof(int32_t) * (size_t)cap);
    PyObject *out = NULL;
    if (next == NULL || fail == NULL || ends == NULL || queue == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t j = 0; j < cap * nclasses; j++) {
        next[j] = -1;
    }
    /* The trie: each literal's state is where it ends. */
    int32_t nstates = 1;
    for (Py_ssize_t i = 0; i < nlits; i++) {
        PyObject *lit = PyList_GET_ITEM(lits, i);
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(lit);
        Py_ssize_t len = PyBytes_GET_SIZE(lit);
        int32_t s = 0;
        for (Py_ssize_t j = 0; j < len; j++) {
            int32_t *move = &next[(Py_ssize_t)s * nclasses + cls[p[j]]];
            if (*move < 0) {
                *move = nstates++;
            }
            s = *move;
        }
        ends[i] = s;
    }
    /* The narrow form's rows: a power of two columns, at least nclasses. */
    int narrow = nstates <= LIT_NARROW_STATES;
    int32_t width = 1;
    while (width < nclasses) {
        width <<= 1;
    }
    int32_t columns = narrow ? width : nclasses;
    out = PyBytes_FromStringAndSize(NULL, lit_pack_size(nstates, columns, nlits, narrow));
    if (out == NULL) {
        goto done;
    }
    char *base = PyBytes_AS_STRING(out);
    memset(base, 0, (size_t)PyBytes_GET_SIZE(out));
    lit_head_t head = {narrow ? LIT_MAGIC_NARROW : LIT_MAGIC, nstates, columns, (int32_t)nlits};
    memcpy(base, &head, sizeof head);
    memcpy(base + sizeof head, cls, 256);
    unsigned char *flags = (unsigned char *)base + sizeof head + 256;
    for (Py_ssize_t i = 0; i < nlits; i++) {
        int t = PyObject_IsTrue(PyList_GET_ITEM(every, i));
        if (t < 0) {
            Py_CLEAR(out);
            goto done;
        }
        flags[i] = (unsigned char)t;
    }
    int32_t *moves = (int32_t *)(flags + (nlits + 3) / 4 * 4);
    int32_t *report = moves + lit_move_words(nstates, columns, narrow);
    int32_t *link = report + nstates;
    int32_t *own_start = link + nstates;
    int32_t *own_count = own_start + nstates;
    int32_t *outs = own_count + nstates;
    /* Outputs by state: counted, then placed (a literal listed twice is two outputs). */
    for (Py_ssize_t i = 0; i < nlits; i++) {
        own_count[ends[i]]++;
    }
    int32_t at = 0;
    for (int32_t s = 0; s < nstates; s++) {
        own_start[s] = at;
        at += own_count[s];
        own_count[s] = 0;
    }
    for (Py_ssize_t i = 0; i < nlits; i++) {
        int32_t s = ends[i];
        outs[own_start[s] + own_count[s]++] = (int32_t)i;
    }
    /* Failure links breadth first, each missing move resolved through them. */
    Py_ssize_t qh = 0, qt = 0;
    fail[0] = 0;
    report[0] = -1;
    link[0] = -1;
    for (int32_t c = 0; c < nclasses; c++) {
        int32_t u = next[c];
        if (u < 0) {
            next[c] = 0;
        }
        else {
            fail[u] = 0;
            queue[qt++] = u;
        }
    }
    while (qh < qt) {
        int32_t r = queue[qh++];
        link[r] = report[fail[r]];
        report[r] = own_count[r] ? r : link[r];
        for (int32_t c = 0; c < nclasses; c++) {
            int32_t *move = &next[(Py_ssize_t)r * nclasses + c];
            int32_t viaf = next[(Py_ssize_t)fail[r] * nclasses + c];
            if (*move < 0) {
                *move = viaf;
            }
            else {
                fail[*move] = viaf;
                queue[qt++] = *move;
            }
        }
    }
    /* Packed in breadth-first order (the shallow states, where a scan spends most of its
     * time, share the first rows and so the processor's caches), each move as the next
     * state's row (its number times the columns) shifted left once, with the low bit set when
     * a literal ends at that state or along its failure chain: a byte then costs one table
     * read, with no multiplication in the chain of reads. */
    int32_t *order = fail; /* old state -> new state; the failure links are no longer needed */
    order[0] = 0;
    for (Py_ssize_t k = 0; k < qt; k++) {
        order[queue[k]] = (int32_t)(k + 1);
    }
    uint32_t *packed = (uint32_t *)moves;
    uint16_t *packed16 = (uint16_t *)moves;
    int32_t *tmp = PyMem_Malloc(sizeof(int32_t) * (size_t)nstates * 4);
    if (tmp == NULL) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    for (int32_t old = 0; old < nstates; old++) {
        int32_t now = order[old];
        for (int32_t c = 0; c < nclasses; c++) {
            int32_t to = next[(Py_ssize_t)old * nclasses + c];
            uint32_t flag = (uint32_t)(report[to] >= 0);
            if (narrow) {
                /* The state itself: its row is found by a shift, not a multiplication. */
                packed16[(Py_ssize_t)now * width + c] = (uint16_t)((uint32_t)order[to] << 1 | flag);
            }
            else {
                packed[(Py_ssize_t)now * nclasses + c] =
                    ((uint32_t)order[to] * (uint32_t)nclasses) << 1 | flag;
            }
        }
        tmp[now] = report[old] >= 0 ? order[report[old]] : -1;
        tmp[nstates + now] = link[old] >= 0 ? order[link[old]] : -1;
        tmp[2 * nstates + now] = own_start[old];
        tmp[3 * nstates + now] = own_count[old];
    }
    memcpy(report, tmp, sizeof(int32_t) * (size_t)nstates * 4);
    PyMem_Free(tmp);
done:
    PyMem_Free(next);
    PyMem_Free(fail);
    PyMem_Free(ends);
    PyMem_Free(queue);
    return out;
}

typedef struct {
    int32_t lit, end;
} lit_found_t;

static int
cmp_int32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int
cmp_found(const void *a, const void *b)
{
    const lit_found_t *x = a, *y = b;
    if (x->lit != y->lit) {
        return x->lit < y->lit ? -1 : 1;
    }
    return (x->end > y->end) - (x->end < y->end);
}

/* A pack of literals read for find_literals() and screen_literals(). */
typedef struct {
    lit_head_t head;
    int narrow;          /* the narrow form: 16-bit moves, rows of 1 << shift columns */
    unsigned shift;
    const unsigned char *cls, *every;
    const uint32_t *packed;
    const uint16_t *packed16;
    const int32_t *report, *link, *own_start, *own_count, *outs;
} lit_pack_t;

/* Reads a pack made by pack_literals; 0, with ValueError set, for anything else. */
static int
lit_pack_read(PyObject *obj, const char *who, lit_pack_t *pk)
{
    const char *base = PyBytes_AS_STRING(obj);
    Py_ssize_t size = PyBytes_GET_SIZE(obj);
    if (size < (Py_ssize_t)sizeof pk->head + 256) {
        goto not_a_pack;
    }
    memcpy(&pk->head, base, sizeof pk->head);
    const lit_head_t *h = &pk->head;
    pk->narrow = h->magic == LIT_MAGIC_NARROW;
    if ((h->magic != LIT_MAGIC && !pk->narrow) || h->nstates < 1 || h->nclasses < 1
        || h->nlits < 0 || h->nclasses > 256
        || (Py_ssize_t)h->nstates * h->nclasses > LIT_MAX_MOVES
        || (pk->narrow && (h->nstates > LIT_NARROW_STATES
                           || (h->nclasses & (h->nclasses - 1)) != 0))
        || lit_pack_size(h->nstates, h->nclasses, h->nlits, pk->narrow) != size) {
        goto not_a_pack;
    }
    pk->shift = 0;
    while ((1 << pk->shift) < h->nclasses) {
        pk->shift++;
    }
    pk->cls = (const unsigned char *)base + sizeof pk->head;
    for (int b = 0; b < 256; b++) {
        /* A class past the row would read another row's moves, or past the table. */
        if (pk->cls[b] >= h->nclasses) {
            goto not_a_pack;
        }
    }
    pk->every = pk->cls + 256;
    const int32_t *moves = (const int32_t *)(pk->every + (h->nlits + 3) / 4 * 4);
    pk->packed = (const uint32_t *)moves;
    pk->packed16 = (const uint16_t *)moves;
    pk->report = moves + lit_move_words(h->nstates, h->nclasses, pk->narrow);
    pk->link = pk->report + h->nstates;
    pk->own_start = pk->link + h->nstates;
    pk->own_count = pk->own_start + h->nstates;
    pk->outs = pk->own_count + h->nstates;
    return 1;
not_a_pack:
    PyErr_Format(PyExc_ValueError, "%s(): not a pack of literals", who);
    return 0;
}

/* What lit_scan does where literals end at ``state`` after byte i (see there). */
static inline int
lit_report(const lit_pack_t *pk, int32_t state, Py_ssize_t i, Py_ssize_t most, int once,
           int32_t *seen, int32_t *distinct, Py_ssize_t *ndistinct, lit_found_t **found,
           Py_ssize_t *nfound, Py_ssize_t *cap)
{
    const int32_t nstates = pk->head.nstates, nlits = pk->head.nlits;
    for (int32_t t = pk->report[state]; t >= 0; t = pk->link[t]) {
        if (t >= nstates || pk->own_start[t] < 0 || pk->own_count[t] < 0
            || pk->own_start[t] > nlits - pk->own_count[t]) {
            return -2;
        }
        for (int32_t k = pk->own_start[t], e = k + pk->own_count[t]; k < e; k++) {
            int32_t lit = pk->outs[k];
            if (lit < 0 || lit >= nlits) {
                return -2;
            }
            int every = pk->every[lit];
            if (seen[lit] >= (every ? most : 1)) {
                continue;
            }
            if (seen[lit]++ == 0 && distinct != NULL) {
                distinct[(*ndistinct)++] = lit;
            }
            if (!every && !once) {
                continue;
            }
            if (*nfound == *cap) {
                Py_ssize_t more_cap = *cap * 2;
                lit_found_t *more = PyMem_Realloc(*found, sizeof(lit_found_t) * (size_t)more_cap);
                if (more == NULL) {
                    PyErr_NoMemory();
                    return -1;
                }
                *found = more;
                *cap = more_cap;
            }
            (*found)[*nfound].lit = lit;
            (*found)[*nfound].end = (int32_t)(i + 1);
            (*nfound)++;
        }
    }
    return 0;
}

/* One pass of the automaton over data. Every literal found is counted in seen[] (which the
 * caller zeroes, nlits + 1 entries); its first occurrence also goes into *distinct (when not
 * NULL; nlits entries). Ends are appended to *found: every place (the first ``most``) for a
 * literal packed with every true, and, when ``once`` is set, the first place for any other.
 * Returns 0 on success, -1 with MemoryError set, -2 for a pack not made by pack_literals. */
static int
lit_scan(const lit_pack_t *pk, const unsigned char *data, Py_ssize_t n, Py_ssize_t most,
         int once, int32_t *seen, int32_t *distinct, Py_ssize_t *ndistinct,
         lit_found_t **found, Py_ssize_t *nfound, Py_ssize_t *cap)
{
    const int32_t nc = pk->head.nclasses, nstates = pk->head.nstates;
    const unsigned char *cls = pk->cls;
    int rc;
    if (pk->narrow) {
        const uint16_t *moves = pk->packed16;
        const unsigned shift = pk->shift;
        uint32_t state = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint32_t move = moves[(state << shift) + cls[data[i]]];
            state = move >> 1;
            if (state >= (uint32_t)nstates) { /* only a pack made otherwise than by pack_literals */
                return -2;
            }
            if ((move & 1)
                && (rc = lit_report(pk, (int32_t)state, i, most, once, seen, distinct, ndistinct,
                                    found, nfound, cap)) < 0) {
                return rc;
            }
        }
        return 0;
    }
    const uint32_t rows = (uint32_t)nstates * (uint32_t)nc;
    uint32_t row = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t move = pk->packed[row + cls[data[i]]];
        row = move >> 1;
        if (row >= rows) { /* only a pack made otherwise than by pack_literals */
            return -2;
        }
        if ((move & 1)
            && (rc = lit_report(pk, (int32_t)(row / (uint32_t)nc), i, most, once, seen, distinct,
                                ndistinct, found, nfound, cap)) < 0) {
            return rc;
        }
    }
    return 0;
}

/* {literal number: [end, ...]} of what lit_scan found (sorted here), or NULL. */
static PyObject *
lit_found_dict(lit_found_t *found, Py_ssize_t nfound)
{
    if (nfound > 1) {
        qsort(found, (size_t)nfound, sizeof(lit_found_t), cmp_found);
    }
    PyObject *out = PyDict_New();
    for (Py_ssize_t i = 0; out != NULL && i < nfound;) {
        Py_ssize_t j = i;
        while (j < nfound && found[j].lit == found[i].lit) {
            j++;
        }
        PyObject *key = PyLong_FromLong(found[i].lit);
        PyObject *list = key ? PyList_New(j - i) : NULL;
        for (Py_ssize_t k = i; list != NULL && k < j; k++) {
            PyObject *end = PyLong_FromLong(found[k].end);
            if (end == NULL) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, k - i, end);
        }
        if (list == NULL || PyDict_SetItem(out, key, list) < 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(key);
        Py_XDECREF(list);
        i = j;
    }
    return out;
}

/* The arguments find_literals and screen_literals share, their types checked by the caller:
 * the pack (args[0]), the data (args[at]) and ``most`` after it (PY_SSIZE_T_MAX when absent).
 * 0, with the error set, for a bad one. */
static int
lit_args(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t at, const char *who,
         lit_pack_t *pk, const unsigned char **data, Py_ssize_t *n, Py_ssize_t *most)
{
    *most = PY_SSIZE_T_MAX;
    if (nargs > at + 1) {
        *most = PyLong_AsSsize_t(args[at + 1]);
        if (*most == -1 && PyErr_Occurred()) {
            return 0;
        }
        if (*most < 1) {
            PyErr_Format(PyExc_ValueError, "%s: most must be at least 1", who);
            return 0;
        }
    }
    if (!lit_pack_read(args[0], who, pk)) {
        return 0;
    }
    *data = (const unsigned char *)PyBytes_AS_STRING(args[at]);
    *n = PyBytes_GET_SIZE(args[at]);
    if (*n >= INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: data longer than 2 GiB", who);
        return 0;
    }
    return 1;
}

static PyObject *
ctext_find_literals(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if ((nargs != 2 && nargs != 3) || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "find_literals(pack, data[, most]): bytes, bytes, int");
        return NULL;
    }
    lit_pack_t pk;
    const unsigned char *data;
    Py_ssize_t n, most;
    if (!lit_args(args, nargs, 1, "find_literals", &pk, &data, &n, &most)) {
        return NULL;
    }
    /* Ends reported so far per literal: one for a literal reported once, ``most`` for any
     * other (a text of one lead repeated millions of times lists no more than that). */
    int32_t *seen = PyMem_Calloc((size_t)pk.head.nlits + 1, sizeof(int32_t));
    Py_ssize_t nfound = 0, cap = 64;
    lit_found_t *found = PyMem_Malloc(sizeof(lit_found_t) * (size_t)cap);
    if (seen == NULL || found == NULL) {
        PyMem_Free(seen);
        PyMem_Free(found);
        return PyErr_NoMemory();
    }
    int rc = lit_scan(&pk, data, n, most, 1, seen, NULL, NULL, &found, &nfound, &cap);
    PyMem_Free(seen);
    PyObject *out = NULL;
    if (rc == 0) {
        out = lit_found_dict(found, nfound);
    }
    else if (rc == -2) {
        PyErr_SetString(PyExc_ValueError, "find_literals(): not a pack of literals");
    }
    PyMem_Free(found);
    return out;
}

/* ---- The regex screen in one call: which patterns a text may match -----------------------
 *
 * pack_screen(nlits, patterns) packs, for the literals of a pack_literals pack (nlits of
 * them), the sets of literals each pattern requires: patterns is a list, per pattern, of its
 * sets, each a non-empty list of literal numbers. A pattern may match a text only if every one
 * of its sets has a literal in the text. screen_literals(pack, screen, data[, most]) scans data
 * once and returns (the numbers of those patterns, ascending; {literal number: [end, ...]} for
 * the literals packed with every true, as find_literals gives them). That is find_literals
 * followed by a walk of its answer in Python, without building an entry for each of the
 * hundreds of other literals a long text holds.
 *
 * Screen layout (native int32): magic, nlits, npats, nsets, nmembers; then per literal where
 * its memberships begin (nlits + 1 entries), the memberships (set numbers), the pattern of
 * each set and the number of sets of each pattern. */

#define SCR_MAGIC 0x53435231 /* "SCR1" */

typedef struct {
    int32_t magic, nlits, npats, nsets, nmembers;
} scr_head_t;

static Py_ssize_t
scr_size(Py_ssize_t nlits, Py_ssize_t npats, Py_ssize_t nsets, Py_ssize_t nmembers)
{
    return (Py_ssize_t)sizeof(scr_head_t)
           + (Py_ssize_t)sizeof(int32_t) * (nlits + 1 + nmembers + nsets + npats);
}

static PyObject *
ctext_pack_screen(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyLong_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "pack_screen(nlits, patterns): an int and a list of lists of lists");
        return NULL;
    }
    Py_ssize_t nlits = PyLong_AsSsize_t(args[0]);
    if (nlits == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *pats = args[1];
    Py_ssize_t npats = PyList_GET_SIZE(pats);
    if (nlits < 0 || nlits >= INT32_MAX / 2 || npats >= INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "pack_screen: too many literals or patterns");
        return NULL;
    }
    /* Counted first: sets, and memberships per literal. */
    Py_ssize_t nsets = 0, nmembers = 0;
    int32_t *count = PyMem_Calloc((size_t)nlits + 1, sizeof(int32_t));
    if (count == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *out = NULL;
    for (Py_ssize_t p = 0; p < npats; p++) {
        PyObject *sets = PyList_GET_ITEM(pats, p);
        if (!PyList_Check(sets) || PyList_GET_SIZE(sets) == 0) {
            PyErr_SetString(PyExc_ValueError,
                            "pack_screen: every pattern is a non-empty list of sets");
            goto done;
        }
        for (Py_ssize_t s = 0; s < PyList_GET_SIZE(sets); s++) {
            PyObject *set = PyList_GET_ITEM(sets, s);
            if (!PyList_Check(set) || PyList_GET_SIZE(set) == 0) {
                PyErr_SetString(PyExc_ValueError,
                                "pack_screen: every set is a non-empty list of literal numbers");
                goto done;
            }
            nsets++;
            for (Py_ssize_t k = 0; k < PyList_GET_SIZE(set); k++) {
                Py_ssize_t lit = PyLong_AsSsize_t(PyList_GET_ITEM(set, k));
                if (lit == -1 && PyErr_Occurred()) {
                    goto done;
                }
                if (lit < 0 || lit >= nlits) {
                    PyErr_Format(PyExc_ValueError,
                                 "pack_screen: literal number %zd is not below %zd", lit, nlits);
                    goto done;
                }
                count[lit]++;
                nmembers++;
            }
            if (nsets >= INT32_MAX / 2 || nmembers >= INT32_MAX / 2) {
                PyErr_SetString(PyExc_ValueError, "pack_screen: too many sets");
                goto done;
            }
        }
    }
    out = PyBytes_FromStringAndSize(NULL, scr_size(nlits, npats, nsets, nmembers));
    if (out == NULL) {
        goto done;
    }
    char *base = PyBytes_AS_STRING(out);
    scr_head_t head = {SCR_MAGIC, (int32_t)nlits, (int32_t)npats, (int32_t)nsets,
                       (int32_t)nmembers};
    memcpy(base, &head, sizeof head);
    int32_t *start = (int32_t *)(base + sizeof head);
    int32_t *members = start + nlits + 1;
    int32_t *set_pat = members + nmembers;
    int32_t *pat_sets = set_pat + nsets;
    int32_t at = 0;
    for (Py_ssize_t lit = 0; lit < nlits; lit++) {
        start[lit] = at;
        at += count[lit];
        count[lit] = start[lit]; /* now where the next membership goes */
    }
    start[nlits] = at;
    int32_t setno = 0;
    for (Py_ssize_t p = 0; p < npats; p++) {
        PyObject *sets = PyList_GET_ITEM(pats, p);
        pat_sets[p] = (int32_t)PyList_GET_SIZE(sets);
        for (Py_ssize_t s = 0; s < PyList_GET_SIZE(sets); s++, setno++) {
            PyObject *set = PyList_GET_ITEM(sets, s);
            set_pat[setno] = (int32_t)p;
            for (Py_ssize_t k = 0; k < PyList_GET_SIZE(set); k++) {
                Py_ssize_t lit = PyLong_AsSsize_t(PyList_GET_ITEM(set, k));
                members[count[lit]++] = setno;
            }
        }
    }
done:
    PyMem_Free(count);
    return out;
}

static PyObject *
ctext_screen_literals(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if ((nargs != 3 && nargs != 4) || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])
        || !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "screen_literals(pack, screen, data[, most]): bytes, bytes, bytes, int");
        return NULL;
    }
    lit_pack_t pk;
    const unsigned char *data;
    Py_ssize_t n, most;
    if (!lit_args(args, nargs, 2, "screen_literals", &pk, &data, &n, &most)) {
        return NULL;
    }
    const char *sbase = PyBytes_AS_STRING(args[1]);
    Py_ssize_t ssize = PyBytes_GET_SIZE(args[1]);
    scr_head_t sh;
    if (ssize >= (Py_ssize_t)sizeof sh) {
        memcpy(&sh, sbase, sizeof sh);
    }
    if (ssize < (Py_ssize_t)sizeof sh || sh.magic != SCR_MAGIC || sh.nlits != pk.head.nlits
        || sh.npats < 0 || sh.nsets < 0 || sh.nmembers < 0
        || scr_size(sh.nlits, sh.npats, sh.nsets, sh.nmembers) != ssize) {
        PyErr_SetString(PyExc_ValueError, "screen_literals(): not a screen of this pack");
        return NULL;
    }
    const int32_t *start = (const int32_t *)(sbase + sizeof sh);
    const int32_t *members = start + sh.nlits + 1;
    const int32_t *set_pat = members + sh.nmembers;
    const int32_t *pat_sets = set_pat + sh.nsets;
    Py_ssize_t nlits = pk.head.nlits;
    /* Zeroed: per literal the ends reported (seen), per pattern its sets met (pat_hit), per
     * set whether it is met (set_hit); not zeroed: the literals found (distinct) and the
     * patterns passed. One block of each kind. */
    int32_t *zeroed = PyMem_Calloc((size_t)(nlits + 1) + (size_t)sh.npats + 1
                                       + ((size_t)sh.nsets + 4) / 4,
                                   sizeof(int32_t));
    int32_t *seen = zeroed, *pat_hit = zeroed ? zeroed + nlits + 1 : NULL;
    unsigned char *set_hit = zeroed ? (unsigned char *)(pat_hit + sh.npats + 1) : NULL;
    int32_t *distinct = PyMem_Malloc(sizeof(int32_t) * ((size_t)nlits + 1 + (size_t)sh.npats + 1));
    int32_t *passed = distinct ? distinct + nlits + 1 : NULL;
    Py_ssize_t nfound = 0, cap = 16, ndistinct = 0, npassed = 0;
    lit_found_t *found = PyMem_Malloc(sizeof(lit_found_t) * (size_t)cap);
    PyObject *result = NULL, *list = NULL, *ends = NULL;
    if (zeroed == NULL || distinct == NULL || found == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int rc = lit_scan(&pk, data, n, most, 0, seen, distinct, &ndistinct, &found, &nfound, &cap);
    if (rc == -1) {
        goto done;
    }
    if (rc == -2) {
        PyErr_SetString(PyExc_ValueError, "screen_literals(): not a pack of literals");
        goto done;
    }
    /* Each set that a literal found belongs to is met once; a pattern passes when all of its
     * sets are. */
    for (Py_ssize_t d = 0; d < ndistinct; d++) {
        int32_t lit = distinct[d];
        int32_t from = start[lit], to = start[lit + 1];
        if (from < 0 || from > to || to > sh.nmembers) {
            goto not_a_screen;
        }
        for (int32_t m = from; m < to; m++) {
            int32_t s = members[m];
            if (s < 0 || s >= sh.nsets) {
                goto not_a_screen;
            }
            if (set_hit[s]) {
                continue;
            }
            set_hit[s] = 1;
            int32_t p = set_pat[s];
            if (p < 0 || p >= sh.npats) {
                goto not_a_screen;
            }
            if (++pat_hit[p] == pat_sets[p]) {
                passed[npassed++] = p;
            }
        }
    }
    if (npassed > 1) {
        qsort(passed, (size_t)npassed, sizeof(int32_t), cmp_int32);
    }
    list = PyList_New(npassed);
    for (Py_ssize_t i = 0; list != NULL && i < npassed; i++) {
        PyObject *num = PyLong_FromLong(passed[i]);
        if (num == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, num);
    }
    ends = list ? lit_found_dict(found, nfound) : NULL;
    if (ends != NULL) {
        result = PyTuple_Pack(2, list, ends);
    }
    goto done;
not_a_screen: /* found while reading it: a screen not made by pack_screen for this pack */
    PyErr_SetString(PyExc_ValueError, "screen_literals(): not a screen of this pack");
done:
    Py_XDECREF(list);
    Py_XDECREF(ends);
    PyMem_Free(zeroed);
    PyMem_Free(distinct);
    PyMem_Free(found);
    return result;
}

static PyMethodDef ctext_methods[] = {
    {"pack_literals", (PyCFunction)(void (*)(void))ctext_pack_literals, METH_FASTCALL,
     "pack_literals(literals, every) -> bytes\n\n"
     "An automaton finding all the bytes literals at once, packed for find_literals()."},
    {"find_literals", (PyCFunction)(void (*)(void))ctext_find_literals, METH_FASTCALL,
     "find_literals(pack, data[, most]) -> {literal number: [end, ...]}\n\n"
     "Where each literal of the pack ends in data: every place (the first most) for a literal\n"
     "packed with every true, the first for any other; literals not found are absent."},
    {"pack_screen", (PyCFunction)(void (*)(void))ctext_pack_screen, METH_FASTCALL,
     "pack_screen(nlits, patterns) -> bytes\n\n"
     "Per pattern, its sets of literal numbers (one of each required), packed for\n"
     "screen_literals()."},
    {"screen_literals", (PyCFunction)(void (*)(void))ctext_screen_literals, METH_FASTCALL,
     "screen_literals(pack, screen, data[, most]) -> (pattern numbers, {literal: [end, ...]})\n\n"
     "The patterns each of whose sets has a literal in data (ascending), and where the\n"
     "literals packed with every true end, as find_literals() gives them."},
    {"pack_choices", (PyCFunction)(void (*)(void))ctext_pack_choices, METH_FASTCALL,
     "pack_choices(choices) -> bytes\n\n"
     "The list of str choices packed once for similar()."},
    {"similar", (PyCFunction)(void (*)(void))ctext_similar, METH_FASTCALL,
     "similar(queries, pack, cutoff) -> list of (query number, choice number)\n\n"
     "Every pair whose normalised Indel similarity (rapidfuzz's, 0 to 1) reaches cutoff,\n"
     "exactly the pairs rapidfuzz's cdist scores at or above it."},
    {"translit", (PyCFunction)(void (*)(void))ctext_translit, METH_FASTCALL,
     "translit(word) -> str or None\n\n"
     "variants.translit_key of an ASCII word; None for any other."},
    {"digit_gaps", (PyCFunction)(void (*)(void))ctext_digit_gaps, METH_FASTCALL,
     "digit_gaps(text) -> list of int\n\n"
     "Where each run of whitespace that follows a digit ends (the index of the character after\n"
     "it), for the number marks of watchers.rules.lookup."},
    {"untrack", (PyCFunction)(void (*)(void))ctext_untrack, METH_FASTCALL,
     "untrack(*objects) -> None\n\n"
     "Leave objects that can be in no reference cycle out of the cyclic collector."},
    {"forget", ctext_forget, METH_NOARGS,
     "forget() -> None\n\n"
     "Empty the table of folds read from a cache dict: call it after a cache entry is changed\n"
     "or removed other than by the fold callback (one that leaves the dict smaller is seen)."},
    {"positions", (PyCFunction)(void (*)(void))ctext_positions, METH_FASTCALL,
     "positions(keys) -> dict\n\n"
     "Each distinct key of the list keys (str) with the ascending list of its indexes: the\n"
     "whole key index of text.FieldText in one pass."},
    {"terms", (PyCFunction)(void (*)(void))ctext_terms, METH_FASTCALL,
     "terms(text, cache, fold, out) -> None\n\n"
     "Add to the set out the norms and keys of text's tokens (words found and folded as by\n"
     "scan), without building the token lists."},
    {"tokens", (PyCFunction)(void (*)(void))ctext_tokens, METH_FASTCALL,
     "tokens(text, cache, fold) -> (folded, odd, keys, norms, starts, ends, pos, last)\n\n"
     "scan's word lists and, in the same pass, the token lists of text.FieldText: compounds\n"
     "followed by their parts, keyless words dropped; pos and last None without compounds."},
    {"scan", (PyCFunction)(void (*)(void))ctext_scan, METH_FASTCALL,
     "scan(text, cache, fold) -> (folded, keys, odd, starts, ends)\n\n"
     "The words of text as watchers.rules.text's word pattern splits them, each folded through\n"
     "cache (a dict from raw word to fold tuple) or, for a word not in it, fold(raw)."},
    {NULL, NULL, 0, NULL},
};

static int
ctext_exec(PyObject *Py_UNUSED(module))
{
    for (int c = 0; c < 128; c++) {
        coarse_single[c] = (char)c;
    }
    coarse_single['g'] = 'h';
    coarse_single['c'] = 's';
    coarse_single['z'] = 's';
    coarse_single['j'] = 'i';
    coarse_single['y'] = 'i';
    coarse_single['e'] = 'i';
    coarse_single['w'] = 'v';
    for (Py_UCS4 c = 0; c < 256; c++) {
        latin1_word[c] = (unsigned char)Py_UNICODE_ISALNUM(c);
        latin1_digit[c] = (unsigned char)Py_UNICODE_ISDECIMAL(c);
    }
    return 0;
}

static int
ctext_traverse(PyObject *module, visitproc visit, void *arg)
{
    ctext_state *st = state_of(module);
    if (st == NULL) {
        return 0;
    }
    Py_VISIT(st->cache);
    if (st->slots != NULL) {
        /* The raw words are exact str, which hold no references. */
        for (size_t j = 0; j <= st->mask; j++) {
            Py_VISIT(st->slots[j].folded);
        }
    }
    return 0;
}

static int
ctext_clear(PyObject *module)
{
    ctext_state *st = state_of(module);
    if (st == NULL) {
        return 0;
    }
    words_drop(st);
    Py_CLEAR(st->cache);
    PyObject **ints = st->ints;
    Py_ssize_t n = st->ints_cap;
    st->ints = NULL;
    st->ints_cap = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(ints[i]);
    }
    PyMem_Free(ints);
    return 0;
}

static void
ctext_free(void *module)
{
    ctext_clear((PyObject *)module);
}

static PyModuleDef_Slot ctext_slots[] = {
    {Py_mod_exec, ctext_exec},
    {0, NULL},
};

static struct PyModuleDef ctext_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "watchers.rules._ctext",
    .m_doc = "Word scanning for watchers.rules.text in one C pass.",
    .m_size = sizeof(ctext_state),
    .m_methods = ctext_methods,
    .m_slots = ctext_slots,
    .m_traverse = ctext_traverse,
    .m_clear = ctext_clear,
    .m_free = ctext_free,
};

PyMODINIT_FUNC
PyInit__ctext(void)
{
    return PyModuleDef_Init(&ctext_module);
}
