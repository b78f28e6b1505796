/*
 * Word scanning for watchers.rules.text in one C pass (optional; the pure path is the spec).
 *
 * scan(text, cache, fold) finds the words of ``text`` exactly as text._SPLIT_RE (or
 * _SPLIT_RE_MARKS when the text holds a combining mark U+0300-U+036F) does, looks each raw word
 * up in ``cache`` (the folding cache dict) and calls ``fold(raw)`` for a word not in it, so the
 * folding rules stay in Python. It returns (folded, keys, odd, starts, ends): each word's cached
 * fold tuple, its key (item 1), the word numbers whose item 3 is true, and the word spans.
 *
 * The pattern, with W = \w (or [\w\u0300-\u036f] in the marks variant):
 *
 *   W+(?:(?:['\u2019\u2018`\-\u2010\u2011\u2013]|[.,](?<=\d[.,])(?=\d))W+)*
 *   (?:\.(?<=\b\w\.)(?:\w\.)+)?
 *
 * Everything after the first W+ is optional and each repetition is greedy, so the regex engine's
 * first successful path is the longest at every choice and never backtracks into an earlier
 * step: the scan below takes each step as far as it goes, which is that path. \w is the regex
 * engine's Unicode \w (Py_UNICODE_ISALNUM or '_') and \d its Unicode \d (Py_UNICODE_ISDECIMAL);
 * the acronym tail uses \w even in the marks variant, as the pattern does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static unsigned char ascii_word[128];

static inline int
is_w(Py_UCS4 ch)
{
    if (ch < 128) {
        return ascii_word[ch];
    }
    return Py_UNICODE_ISALNUM(ch);
}

static inline int
is_word(Py_UCS4 ch, int marks)
{
    if (ch < 128) {
        return ascii_word[ch];
    }
    if (marks && ch >= 0x300 && ch <= 0x36F) {
        return 1;
    }
    return Py_UNICODE_ISALNUM(ch);
}

static inline int
is_d(Py_UCS4 ch)
{
    if (ch < 128) {
        return ch >= '0' && ch <= '9';
    }
    return Py_UNICODE_ISDECIMAL(ch);
}

static inline int
is_joiner(Py_UCS4 ch)
{
    switch (ch) {
    case '\'': case 0x2019: case 0x2018: case '`':
    case '-': case 0x2010: case 0x2011: case 0x2013:
        return 1;
    default:
        return 0;
    }
}

/* The end of the word that starts at s (text[s] is a word character). */
static Py_ssize_t
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
        if (is_joiner(c)) {
            if (!is_word(next, marks)) {
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

static int
append_ssize(PyObject *list, Py_ssize_t v)
{
    PyObject *o = PyLong_FromSsize_t(v);
    if (o == NULL) {
        return -1;
    }
    int r = PyList_Append(list, o);
    Py_DECREF(o);
    return r;
}

/* What to do with each word: its fold tuple (checked to be a tuple of at least 4 items) and
 * its span; a non-zero return is an error (with the exception set). */
typedef int (*visit_fn)(void *ctx, PyObject *f, Py_ssize_t start, Py_ssize_t end);

/*
 * The loop scan() and terms() share: check text, cache and fold (messages name ``fname``),
 * find each word, fold it through the cache or the callback, and hand it to ``visit``.
 */
static int
each_word(const char *fname, PyObject *text, PyObject *cache, PyObject *fold, visit_fn visit,
          void *ctx)
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

    /* The marks variant only when a combining mark occurs; none fits in one byte per char. */
    int marks = 0;
    if (kind != PyUnicode_1BYTE_KIND) {
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_UCS4 ch = PyUnicode_READ(kind, data, i);
            if (ch >= 0x300 && ch <= 0x36F) {
                marks = 1;
                break;
            }
        }
    }
    Py_ssize_t i = 0;
    while (i < n) {
        if (!is_word(PyUnicode_READ(kind, data, i), marks)) {
            i++;
            continue;
        }
        Py_ssize_t e = word_end(kind, data, n, i, marks);
        PyObject *raw = PyUnicode_Substring(text, i, e);
        if (raw == NULL) {
            return -1;
        }
        PyObject *f = PyDict_GetItemWithError(cache, raw);
        if (f != NULL) {
            Py_INCREF(f);
        }
        else if (PyErr_Occurred()) {
            Py_DECREF(raw);
            return -1;
        }
        else {
            f = PyObject_CallOneArg(fold, raw);
        }
        Py_DECREF(raw);
        if (f == NULL) {
            return -1;
        }
        if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) < 4) {
            PyErr_Format(PyExc_TypeError,
                         "%s() folded word must be a tuple (norm, key, parts, odd), "
                         "not %.100s", fname, Py_TYPE(f)->tp_name);
            Py_DECREF(f);
            return -1;
        }
        int r = visit(ctx, f, i, e);
        Py_DECREF(f);
        if (r < 0) {
            return -1;
        }
        i = e;
    }
    return 0;
}

struct scan_lists {
    PyObject *folded, *keys, *odd, *starts, *ends;
    Py_ssize_t m;  /* the word number */
};

static int
scan_visit(void *ctx, PyObject *f, Py_ssize_t start, Py_ssize_t end)
{
    struct scan_lists *out = ctx;
    int is_odd = PyObject_IsTrue(PyTuple_GET_ITEM(f, 3));
    if (is_odd < 0
        || PyList_Append(out->folded, f) < 0
        || PyList_Append(out->keys, PyTuple_GET_ITEM(f, 1)) < 0
        || (is_odd && append_ssize(out->odd, out->m) < 0)
        || append_ssize(out->starts, start) < 0
        || append_ssize(out->ends, end) < 0) {
        return -1;
    }
    out->m++;
    return 0;
}

static PyObject *
ctext_scan(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "scan() takes 3 arguments (text, cache, fold), got %zd",
                     nargs);
        return NULL;
    }
    struct scan_lists out = {PyList_New(0), PyList_New(0), PyList_New(0), PyList_New(0),
                             PyList_New(0), 0};
    PyObject *result = NULL;
    if (out.folded && out.keys && out.odd && out.starts && out.ends
        && each_word("scan", args[0], args[1], args[2], scan_visit, &out) == 0) {
        result = PyTuple_Pack(5, out.folded, out.keys, out.odd, out.starts, out.ends);
    }
    Py_XDECREF(out.folded);
    Py_XDECREF(out.keys);
    Py_XDECREF(out.odd);
    Py_XDECREF(out.starts);
    Py_XDECREF(out.ends);
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
struct token_lists {
    PyObject *folded, *odd, *keys, *norms, *starts, *ends, *pos, *last;
    Py_ssize_t m;         /* the word number */
    Py_ssize_t position;  /* the next token's position */
    Py_ssize_t tokens;    /* tokens made so far */
};

static int
positions_so_far(struct token_lists *out)
{
    /* The first compound: positions so far equal token numbers, so build them now. */
    out->pos = PyList_New(0);
    out->last = PyList_New(0);
    if (out->pos == NULL || out->last == NULL) {
        return -1;
    }
    for (Py_ssize_t t = 0; t < out->tokens; t++) {
        if (append_ssize(out->pos, t) < 0 || append_ssize(out->last, t) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
add_token(struct token_lists *out, PyObject *key, PyObject *norm, Py_ssize_t start,
          Py_ssize_t end, Py_ssize_t pos, Py_ssize_t last)
{
    if (PyList_Append(out->keys, key) < 0 || PyList_Append(out->norms, norm) < 0
        || append_ssize(out->starts, start) < 0 || append_ssize(out->ends, end) < 0) {
        return -1;
    }
    if (out->pos != NULL
        && (append_ssize(out->pos, pos) < 0 || append_ssize(out->last, last) < 0)) {
        return -1;
    }
    out->tokens++;
    return 0;
}

static int
tokens_visit(void *ctx, PyObject *f, Py_ssize_t start, Py_ssize_t end)
{
    struct token_lists *out = ctx;
    int is_odd = PyObject_IsTrue(PyTuple_GET_ITEM(f, 3));
    if (is_odd < 0 || PyList_Append(out->folded, f) < 0
        || (is_odd && append_ssize(out->odd, out->m) < 0)) {
        return -1;
    }
    out->m++;
    PyObject *norm = PyTuple_GET_ITEM(f, 0);
    PyObject *key = PyTuple_GET_ITEM(f, 1);
    if (!is_odd) {
        Py_ssize_t p = out->position++;
        return add_token(out, key, norm, start, end, p, p);
    }
    int keyed = PyObject_IsTrue(key);
    if (keyed <= 0) {
        return keyed;  /* no key: no token (or an error) */
    }
    PyObject *parts = PyTuple_GET_ITEM(f, 2);
    if (!PyTuple_Check(parts)) {
        PyErr_SetString(PyExc_TypeError, "tokens() folded word's parts must be a tuple");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(parts);
    if (n > 0 && out->pos == NULL && positions_so_far(out) < 0) {
        return -1;
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
ctext_tokens(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "tokens() takes 3 arguments (text, cache, fold), got %zd", nargs);
        return NULL;
    }
    struct token_lists out = {PyList_New(0), PyList_New(0), PyList_New(0), PyList_New(0),
                              PyList_New(0), PyList_New(0), NULL, NULL, 0, 0, 0};
    PyObject *result = NULL;
    if (out.folded && out.odd && out.keys && out.norms && out.starts && out.ends
        && each_word("tokens", args[0], args[1], args[2], tokens_visit, &out) == 0) {
        result = PyTuple_Pack(8, out.folded, out.odd, out.keys, out.norms, out.starts, out.ends,
                              out.pos ? out.pos : Py_None, out.last ? out.last : Py_None);
    }
    Py_XDECREF(out.folded);
    Py_XDECREF(out.odd);
    Py_XDECREF(out.keys);
    Py_XDECREF(out.norms);
    Py_XDECREF(out.starts);
    Py_XDECREF(out.ends);
    Py_XDECREF(out.pos);
    Py_XDECREF(out.last);
    return result;
}

/*
 * terms(text, cache, fold, out): add to the set ``out`` what the lookup index holds of text's
 * words: each word's norm and key (items 0 and 1) and its parts' norms and keys (the pairs at
 * the front of each item of item 2), for every word whose key is not empty, as the tokens of a
 * FieldText would give them. The words are found and folded as by scan(); no list is built.
 */
static int
terms_visit(void *ctx, PyObject *f, Py_ssize_t Py_UNUSED(start), Py_ssize_t Py_UNUSED(end))
{
    PyObject *out = ctx;
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

static PyObject *
ctext_terms(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
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
    if (each_word("terms", args[0], args[1], args[2], terms_visit, out) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
ctext_positions(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
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
        PyObject *at = PyLong_FromSsize_t(i);
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

static PyMethodDef ctext_methods[] = {
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
        ascii_word[c] = (unsigned char)((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')
                                        || (c >= 'A' && c <= 'Z') || c == '_');
    }
    return 0;
}

static PyModuleDef_Slot ctext_slots[] = {
    {Py_mod_exec, ctext_exec},
    {0, NULL},
};

static struct PyModuleDef ctext_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "watchers.rules._ctext",
    .m_doc = "Word scanning for watchers.rules.text in one C pass.",
    .m_size = 0,
    .m_methods = ctext_methods,
    .m_slots = ctext_slots,
};

PyMODINIT_FUNC
PyInit__ctext(void)
{
    return PyModuleDef_Init(&ctext_module);
}
