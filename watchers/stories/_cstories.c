/*
 * The story signature's per-token loop and an exemplar's JSON text in C (optional; the Python
 * code in watchers.stories.features is the specification, and gives the same results).
 *
 * terms(keys, norms, pos, last, starts, ends, n, colon, words, word_of, months, speaks, into,
 *       zero, year, number)
 *     features._terms over the first n tokens of a FieldText: fills ``into`` (stem -> weight,
 *     mark -> zero) exactly as the Python loop does. pos and last are None when every token's
 *     position is its number. ``colon`` is text.find(":"). ``words`` is the cache of
 *     features._word_of (norm -> (key, stem, weight, event mark, country mark, actor mark,
 *     subject mark)); a miss, or an entry made for another key, calls ``word_of(key, norm)``.
 *
 * prepare(exemplar, number_w)
 *     What index._Ex reads of an exemplar of exact (str, float) pairs (lead terms off):
 *     (weights, marks, numbers, subject, order), or None for any other exemplar.
 *
 * exemplar_text(ex, pair_text, reprs, max)
 *     json.dumps(ex) in compact form with ensure_ascii=False: a pair whose term is a str json
 *     writes unescaped (no quote, backslash or control character) and whose weight is a finite
 *     float is spelt here ('["' term '",' repr(weight) ']', the repr of a non-zero weight kept
 *     in the dict ``reprs``, cleared when it holds ``max``); any other goes through
 *     ``pair_text(term, weight)``.
 *
 * Scorer(ex_type, story_type, constants)
 *     The story decision, index.StoryIndex._best and index._logit, over the slots of index._Ex
 *     and index._Story; ``constants`` is the index module's globals, read at every call
 *     (bench/stories_train.py changes them). ``best(a, at, postings, numbered, window)`` is
 *     _best and ``logit(a, b, gap_hours)`` is _logit: the same floats, computed in the same
 *     order, and the same story. Either returns NotImplemented for anything it does not
 *     mirror exactly (a weight or a constant that is not a float, lead terms on, times or
 *     bounds out of 64 bits, ...): the Python code then decides, as it would have anyway.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

/* A score must be the very double Python computes: no a * b + c fused into one rounding (GCC
 * fuses by default where the target has FMA, clang within an expression). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#elif defined(_MSC_VER)
#pragma fp_contract(off)
#endif

static int
all_digits(PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n == 0)
        return 0;
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!Py_UNICODE_ISDIGIT(PyUnicode_READ(kind, data, i)))
            return 0;
    }
    return 1;
}

static int
first_digit(PyObject *s)
{
    if (PyUnicode_GET_LENGTH(s) == 0)
        return 0;
    return Py_UNICODE_ISDIGIT(PyUnicode_READ_CHAR(s, 0)) ? 1 : 0;
}

/* An int item of a list as a C integer; -1 with an error set on failure. */
static int
item_ssize(PyObject *list, Py_ssize_t i, Py_ssize_t *out)
{
    PyObject *o = PyList_GET_ITEM(list, i);
    Py_ssize_t v = PyLong_AsSsize_t(o);
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

/* METH_FASTCALL arguments: what PyArg_ParseTuple's "O!", "n" and "d" check, without building
 * an argument tuple and reading a format string on every call (these run once or more an
 * article). Each answers 1, or 0 with a TypeError (or the conversion's error) set. */
static int
arg_count(const char *fname, Py_ssize_t nargs, Py_ssize_t want)
{
    if (nargs == want)
        return 1;
    PyErr_Format(PyExc_TypeError, "%s() takes exactly %zd arguments (%zd given)", fname, want,
                 nargs);
    return 0;
}

static int
arg_of(const char *fname, PyObject *const *args, int i, PyTypeObject *type)
{
    if (PyObject_TypeCheck(args[i], type))
        return 1;
    PyErr_Format(PyExc_TypeError, "%s() argument %d must be %.50s, not %.50s", fname, i + 1,
                 type->tp_name, Py_TYPE(args[i])->tp_name);
    return 0;
}

static int
arg_ssize(const char *fname, PyObject *const *args, int i, Py_ssize_t *out)
{
    if (!PyIndex_Check(args[i])) {
        PyErr_Format(PyExc_TypeError, "%s() argument %d must be int, not %.50s", fname, i + 1,
                     Py_TYPE(args[i])->tp_name);
        return 0;
    }
    Py_ssize_t v = PyNumber_AsSsize_t(args[i], PyExc_OverflowError);
    if (v == -1 && PyErr_Occurred())
        return 0;
    *out = v;
    return 1;
}

static int
arg_double(PyObject *const *args, int i, double *out)
{
    double v = PyFloat_AsDouble(args[i]);
    if (v == -1.0 && PyErr_Occurred())
        return 0;
    *out = v;
    return 1;
}

static PyObject *
terms(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *keys, *norms, *pos, *last, *starts, *ends, *words, *word_of, *months, *speaks;
    PyObject *into, *zero, *year;
    Py_ssize_t n, colon;
    double number;
    static const char *const fname = "terms";
    if (!arg_count(fname, nargs, 16) || !arg_of(fname, args, 0, &PyList_Type)
            || !arg_of(fname, args, 1, &PyList_Type) || !arg_of(fname, args, 4, &PyList_Type)
            || !arg_of(fname, args, 5, &PyList_Type) || !arg_ssize(fname, args, 6, &n)
            || !arg_ssize(fname, args, 7, &colon) || !arg_of(fname, args, 8, &PyDict_Type)
            || !arg_of(fname, args, 10, &PyFrozenSet_Type)
            || !arg_of(fname, args, 11, &PyFrozenSet_Type)
            || !arg_of(fname, args, 12, &PyDict_Type) || !arg_double(args, 15, &number))
        return NULL;
    keys = args[0], norms = args[1], pos = args[2], last = args[3], starts = args[4];
    ends = args[5], words = args[8], word_of = args[9], months = args[10], speaks = args[11];
    into = args[12], zero = args[13], year = args[14];
    Py_ssize_t nkeys = PyList_GET_SIZE(keys);
    int listed = pos != Py_None;
    if (listed && (!PyList_Check(pos) || !PyList_Check(last))) {
        PyErr_SetString(PyExc_TypeError, "pos and last must be lists or None");
        return NULL;
    }
    if (n > nkeys || PyList_GET_SIZE(norms) < n || PyList_GET_SIZE(starts) < n
            || PyList_GET_SIZE(ends) < n
            || (listed && (PyList_GET_SIZE(pos) < n || PyList_GET_SIZE(last) < n))) {
        PyErr_SetString(PyExc_ValueError, "token lists shorter than n");
        return NULL;
    }
    if (colon >= 0) {
        /* A source or speaker before a colon near the start names no actor. */
        Py_ssize_t before = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t e;
            if (item_ssize(ends, i, &e) < 0)
                return NULL;
            if (e <= colon)
                before++;
        }
        if (before > 4)
            colon = -1;
    }
    Py_ssize_t inside_lo = -1, inside_hi = -1;
    int actor = 0, subject = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t p = i, q = i;
        if (listed) {
            if (item_ssize(pos, i, &p) < 0 || item_ssize(last, i, &q) < 0)
                return NULL;
        }
        if (q != p) {
            inside_lo = p + 1;
            inside_hi = q;
            continue;
        }
        PyObject *key = PyList_GET_ITEM(keys, i);
        if (!PyUnicode_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "keys must be str");
            return NULL;
        }
        if (inside_lo <= p && p <= inside_hi && all_digits(key))
            continue;
        PyObject *norm = PyList_GET_ITEM(norms, i);
        PyObject *got = PyDict_GetItemWithError(words, norm);  /* borrowed */
        if (got == NULL && PyErr_Occurred())
            return NULL;
        int same = 0;
        if (got != NULL && PyTuple_CheckExact(got) && PyTuple_GET_SIZE(got) == 7) {
            same = PyObject_RichCompareBool(PyTuple_GET_ITEM(got, 0), key, Py_EQ);
            if (same < 0)
                return NULL;
        }
        if (same)
            Py_INCREF(got);
        else {
            got = PyObject_CallFunctionObjArgs(word_of, key, norm, NULL);
            if (got == NULL)
                return NULL;
            if (!PyTuple_CheckExact(got) || PyTuple_GET_SIZE(got) != 7) {
                Py_DECREF(got);
                PyErr_SetString(PyExc_TypeError, "word_of must return a 7-tuple");
                return NULL;
            }
        }
        PyObject *stem = PyTuple_GET_ITEM(got, 1);
        PyObject *wobj = PyTuple_GET_ITEM(got, 2);
        PyObject *event = PyTuple_GET_ITEM(got, 3);
        PyObject *country = PyTuple_GET_ITEM(got, 4);
        PyObject *acting = PyTuple_GET_ITEM(got, 5);
        PyObject *subj = PyTuple_GET_ITEM(got, 6);
        double w = PyFloat_AsDouble(wobj);
        if (w == -1.0 && PyErr_Occurred())
            goto fail;
        if (w == number && i > 0) {
            /* "Jan. 6", "July 4": a date names a day, not a count; it weighs as a year. */
            int month = PySet_Contains(months, PyList_GET_ITEM(keys, i - 1));
            if (month < 0)
                goto fail;
            if (month) {
                wobj = year;
                w = PyFloat_AsDouble(year);
                if (w == -1.0 && PyErr_Occurred())
                    goto fail;
            }
        }
        if (event != Py_None && PyDict_SetItem(into, event, zero) < 0)
            goto fail;
        if (country != Py_None) {
            if (PyDict_SetItem(into, country, zero) < 0)
                goto fail;
            if (!actor) {
                Py_ssize_t e;
                if (item_ssize(ends, i, &e) < 0)
                    goto fail;
                int speaker = e <= colon;
                if (!speaker && i + 1 < nkeys) {
                    speaker = PySet_Contains(speaks, PyList_GET_ITEM(keys, i + 1));
                    if (speaker < 0)
                        goto fail;
                }
                if (!speaker) {
                    if (PyDict_SetItem(into, acting, zero) < 0)
                        goto fail;
                    actor = 1;
                }
            }
        }
        if (!subject && w >= 1.0) {
            Py_ssize_t s;
            if (item_ssize(starts, i, &s) < 0)
                goto fail;
            if (s > colon && !first_digit(key)) {
                if (PyDict_SetItem(into, subj, zero) < 0)
                    goto fail;
                subject = 1;
            }
        }
        if (w != 0.0) {
            PyObject *cur = PyDict_GetItemWithError(into, stem);  /* borrowed */
            double have = 0.0;
            if (cur == NULL) {
                if (PyErr_Occurred())
                    goto fail;
            }
            else {
                have = PyFloat_AsDouble(cur);
                if (have == -1.0 && PyErr_Occurred())
                    goto fail;
            }
            if (have < w && PyDict_SetItem(into, stem, wobj) < 0)
                goto fail;
        }
        Py_DECREF(got);
        continue;
    fail:
        Py_DECREF(got);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Whether json (ensure_ascii=False) writes the str as it is between its quotes. */
static int
plain(PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 0x20 || c == '"' || c == '\\')
            return 0;
    }
    return 1;
}

static PyObject *s_zero, *s_negzero;

/* float_text's texts of recent weights, by the bits of the double (a new one takes the place
 * of whatever was in its slot): bounded, and kept for the life of the process. */
#define FLOATS_SEEN_BITS 10
static struct float_seen {
    uint64_t bits;
    PyObject *text;  /* a strong reference, or NULL */
} floats_seen[1 << FLOATS_SEEN_BITS];

/* repr(w) of a finite float, from ``reprs`` (positive weights repeat: they are rounded) or
 * made and kept there (the dict is cleared when it holds ``max`` entries); a new reference. */
static PyObject *
float_text(PyObject *w, PyObject *reprs, Py_ssize_t max)
{
    double v = PyFloat_AS_DOUBLE(w);
    if (v == 0.0) {
        PyObject *r = signbit(v) ? s_negzero : s_zero;
        Py_INCREF(r);
        return r;
    }
    /* First a small table by the double's bits (one read, where the dict hashed the float and
     * probed: a fifth of what spelling an exemplar cost); equal bits spell alike. */
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    struct float_seen *seen =
        &floats_seen[(bits * 0x9E3779B97F4A7C15ULL) >> (64 - FLOATS_SEEN_BITS)];
    if (seen->text != NULL && seen->bits == bits) {
        Py_INCREF(seen->text);
        return seen->text;
    }
    /* Equal positive floats have equal reprs; 1 == 1.0 cannot meet here (floats only). */
    PyObject *r = PyDict_GetItemWithError(reprs, w);
    if (r != NULL) {
        Py_INCREF(r);
    }
    else {
        if (PyErr_Occurred())
            return NULL;
        r = PyObject_Repr(w);
        if (r == NULL)
            return NULL;
        if (PyDict_GET_SIZE(reprs) >= max)
            PyDict_Clear(reprs);
        if (PyDict_SetItem(reprs, w, r) < 0) {
            Py_DECREF(r);
            return NULL;
        }
    }
    if (PyUnicode_CheckExact(r)) {
        Py_INCREF(r);
        Py_XSETREF(seen->text, r);
        seen->bits = bits;
    }
    return r;
}

#define SMALL 32

/* PyUnicode_CopyCharacters of all ``len`` characters of ``src`` into ``out`` (of ``kind``, its
 * characters at ``data``) at ``at``: a plain copy where both are of one kind (a term or a
 * weight's text almost always), which the general call did through several checks for each of
 * an exemplar's pieces. */
static int
copy_text(PyObject *out, int kind, void *data, Py_ssize_t at, PyObject *src, Py_ssize_t len)
{
    if (PyUnicode_KIND(src) == kind) {
        memcpy((char *)data + at * kind, PyUnicode_DATA(src), (size_t)(len * kind));
        return 0;
    }
    return PyUnicode_CopyCharacters(out, at, src, 0, len) < 0 ? -1 : 0;
}


static PyObject *
exemplar_text(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *ex, *pair_text, *reprs;
    Py_ssize_t max;
    static const char *const fname = "exemplar_text";
    if (!arg_count(fname, nargs, 4) || !arg_of(fname, args, 2, &PyDict_Type)
            || !arg_ssize(fname, args, 3, &max))
        return NULL;
    ex = args[0], pair_text = args[1], reprs = args[2];
    PyObject *seq = PySequence_Fast(ex, "an exemplar must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    /* Per pair: the term and the weight's text (fast pairs), or the whole pair's text (terms
     * NULL). */
    PyObject *small_terms[SMALL], *small_texts[SMALL];
    PyObject **terms = small_terms, **texts = small_texts;
    PyObject *out = NULL;
    Py_ssize_t done = 0;
    if (n > SMALL) {
        terms = PyMem_Calloc((size_t)n, sizeof(PyObject *));
        texts = PyMem_Calloc((size_t)n, sizeof(PyObject *));
        if (terms == NULL || texts == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    }
    /* '[' + ']' + commas between pairs. */
    Py_ssize_t length = 2 + (n > 0 ? n - 1 : 0);
    Py_UCS4 maxchar = 127;
    for (; done < n; done++) {
        PyObject *p = PySequence_Fast_GET_ITEM(seq, done);
        PyObject *term, *w;
        if (PyTuple_CheckExact(p) && PyTuple_GET_SIZE(p) == 2) {
            term = PyTuple_GET_ITEM(p, 0);
            w = PyTuple_GET_ITEM(p, 1);
            Py_INCREF(term);
            Py_INCREF(w);
        }
        else {
            /* As the Python code reads it: p[0], p[1]. */
            term = PySequence_GetItem(p, 0);
            if (term == NULL)
                goto done;
            w = PySequence_GetItem(p, 1);
            if (w == NULL) {
                Py_DECREF(term);
                goto done;
            }
        }
        PyObject *text;
        if (PyUnicode_CheckExact(term) && plain(term) && PyFloat_CheckExact(w)
                && isfinite(PyFloat_AS_DOUBLE(w))) {
            text = float_text(w, reprs, max);
            terms[done] = term;  /* the reference taken above */
            if (text != NULL) {
                /* '["' term '",' weight ']' */
                length += 5 + PyUnicode_GET_LENGTH(term) + PyUnicode_GET_LENGTH(text);
                Py_UCS4 m = PyUnicode_MAX_CHAR_VALUE(term);
                if (m > maxchar)
                    maxchar = m;
            }
        }
        else {
            text = PyObject_CallFunctionObjArgs(pair_text, term, w, NULL);
            Py_DECREF(term);
            terms[done] = NULL;
            if (text != NULL && !PyUnicode_Check(text)) {
                PyErr_SetString(PyExc_TypeError, "pair_text must return str");
                Py_CLEAR(text);
            }
            if (text != NULL) {
                length += PyUnicode_GET_LENGTH(text);
                Py_UCS4 m = PyUnicode_MAX_CHAR_VALUE(text);
                if (m > maxchar)
                    maxchar = m;
            }
        }
        Py_DECREF(w);
        texts[done] = text;
        if (text == NULL) {
            Py_XDECREF(terms[done]);
            goto done;
        }
    }
    out = PyUnicode_New(length, maxchar);
    if (out == NULL)
        goto done;
    int kind = PyUnicode_KIND(out);
    void *data = PyUnicode_DATA(out);
    Py_ssize_t at = 0;
    PyUnicode_WRITE(kind, data, at++, '[');
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i)
            PyUnicode_WRITE(kind, data, at++, ',');
        if (terms[i] != NULL) {
            PyUnicode_WRITE(kind, data, at++, '[');
            PyUnicode_WRITE(kind, data, at++, '"');
            Py_ssize_t len = PyUnicode_GET_LENGTH(terms[i]);
            if (copy_text(out, kind, data, at, terms[i], len) < 0)
                goto fail;
            at += len;
            PyUnicode_WRITE(kind, data, at++, '"');
            PyUnicode_WRITE(kind, data, at++, ',');
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(texts[i]);
        if (copy_text(out, kind, data, at, texts[i], len) < 0)
            goto fail;
        at += len;
        if (terms[i] != NULL)
            PyUnicode_WRITE(kind, data, at++, ']');
    }
    PyUnicode_WRITE(kind, data, at++, ']');
    goto done;
fail:
    Py_CLEAR(out);
done:
    for (Py_ssize_t i = 0; i < done; i++) {
        Py_XDECREF(terms[i]);
        Py_XDECREF(texts[i]);
    }
    if (terms != small_terms)
        PyMem_Free(terms);
    if (texts != small_texts)
        PyMem_Free(texts);
    Py_DECREF(seq);
    return out;
}

/* index._Ex's walk over an exemplar (lead terms off), for exemplars of exact (str, float) pairs
 * with non-empty terms; None for any other (the Python loop then reads it). */
static PyObject *
prepare(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *ex;
    double number_w;
    static const char *const fname = "prepare";
    if (!arg_count(fname, nargs, 2) || !arg_of(fname, args, 0, &PyTuple_Type)
            || !arg_double(args, 1, &number_w))
        return NULL;
    ex = args[0];
    Py_ssize_t n = PyTuple_GET_SIZE(ex);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyTuple_GET_ITEM(ex, i);
        if (!PyTuple_CheckExact(p) || PyTuple_GET_SIZE(p) != 2
                || !PyUnicode_CheckExact(PyTuple_GET_ITEM(p, 0))
                || PyUnicode_GET_LENGTH(PyTuple_GET_ITEM(p, 0)) == 0
                || !PyFloat_CheckExact(PyTuple_GET_ITEM(p, 1)))
            Py_RETURN_NONE;
    }
    PyObject *weights = PyDict_New(), *marks = PyList_New(0), *numbers = PyList_New(0);
    PyObject *subject = NULL, *order = NULL, *out = NULL;
    PyObject **keys = NULL;
    double *ws = NULL;
    if (weights == NULL || marks == NULL || numbers == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p = PyTuple_GET_ITEM(ex, i);
        PyObject *t = PyTuple_GET_ITEM(p, 0), *w = PyTuple_GET_ITEM(p, 1);
        double v = PyFloat_AS_DOUBLE(w);
        if (v > 0) {
            /* One string per distinct term across all live stories. */
            Py_INCREF(t);
            PyUnicode_InternInPlace(&t);
            int bad = PyDict_SetItem(weights, t, w) < 0
                      || (v >= number_w && Py_UNICODE_ISDIGIT(PyUnicode_READ_CHAR(t, 0))
                          && PyList_Append(numbers, t) < 0);
            Py_DECREF(t);
            if (bad)
                goto done;
        }
        else if (v == 0.0) {
            if (PyUnicode_READ_CHAR(t, 0) == '^') {
                Py_XSETREF(subject, t);
                Py_INCREF(t);
            }
            else if (PyList_Append(marks, t) < 0)
                goto done;
        }
        /* Negative: a lead term of an earlier version, not evidence. NaN: neither. */
    }
    if (subject != NULL) {
        PyObject *name = PyUnicode_Substring(subject, 1, PyUnicode_GET_LENGTH(subject));
        if (name == NULL)
            goto done;
        PyUnicode_InternInPlace(&name);
        Py_SETREF(subject, name);
    }
    else {
        subject = PyUnicode_New(0, 0);
        if (subject == NULL)
            goto done;
    }
    /* The terms heaviest first, ties in the dict's order: what a stable sort on descending
     * weight gives. */
    Py_ssize_t size = PyDict_GET_SIZE(weights);
    keys = PyMem_Malloc((size_t)(size ? size : 1) * sizeof(PyObject *));
    ws = PyMem_Malloc((size_t)(size ? size : 1) * sizeof(double));
    if (keys == NULL || ws == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t pos = 0, k = 0;
    PyObject *key, *value;
    while (PyDict_Next(weights, &pos, &key, &value)) {
        double v = PyFloat_AS_DOUBLE(value);
        Py_ssize_t j = k;
        while (j > 0 && ws[j - 1] < v) {
            keys[j] = keys[j - 1];
            ws[j] = ws[j - 1];
            j--;
        }
        keys[j] = key;
        ws[j] = v;
        k++;
    }
    order = PyTuple_New(size);
    if (order == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < size; i++) {
        Py_INCREF(keys[i]);
        PyTuple_SET_ITEM(order, i, keys[i]);
    }
    PyObject *mark_tuple = PyList_AsTuple(marks);
    if (mark_tuple == NULL)
        goto done;
    out = PyTuple_Pack(5, weights, mark_tuple, numbers, subject, order);
    Py_DECREF(mark_tuple);
done:
    PyMem_Free(keys);
    PyMem_Free(ws);
    Py_XDECREF(weights);
    Py_XDECREF(marks);
    Py_XDECREF(numbers);
    Py_XDECREF(subject);
    Py_XDECREF(order);
    return out;
}

/* index._post: story number ``num`` last in the postings list of each key of ``terms`` (a dict),
 * the list made when the term has none; with ``move``, taken out of the list first when it is in
 * it. A list is a dict of numbers to None (never tracked by the cyclic collector). */
static PyObject *
post(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *const fname = "post";
    if (!arg_count(fname, nargs, 4) || !arg_of(fname, args, 0, &PyDict_Type)
            || !arg_of(fname, args, 2, &PyDict_Type))
        return NULL;
    PyObject *postings = args[0], *num = args[1], *terms = args[2];
    int move = PyObject_IsTrue(args[3]);
    if (move < 0)
        return NULL;
    Py_ssize_t pos = 0;
    PyObject *term, *value;
    while (PyDict_Next(terms, &pos, &term, &value)) {
        PyObject *ids = PyDict_GetItemWithError(postings, term);  /* borrowed */
        if (ids == NULL) {
            if (PyErr_Occurred())
                return NULL;
            PyObject *made = PyDict_New();
            if (made == NULL)
                return NULL;
            int bad = PyDict_SetItem(made, num, Py_None) < 0
                      || PyDict_SetItem(postings, term, made) < 0;
            Py_DECREF(made);
            if (bad)
                return NULL;
            continue;
        }
        if (!PyDict_Check(ids)) {
            PyErr_Format(PyExc_TypeError, "a postings list must be a dict, not %.50s",
                         Py_TYPE(ids)->tp_name);
            return NULL;
        }
        Py_INCREF(ids);
        int bad = 0;
        if (move) {
            int has = PyDict_Contains(ids, num);
            bad = has < 0 || (has && PyDict_DelItem(ids, num) < 0);
        }
        bad = bad || PyDict_SetItem(ids, num, Py_None) < 0;
        Py_DECREF(ids);
        if (bad)
            return NULL;
    }
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------------------------------
 * The story decision: index.StoryIndex._best and index._logit.
 *
 * Helpers answer OK (done), PYTHON (not mirrored exactly here: the Python code decides) or ERR
 * (a Python exception is set). Nothing here changes any object, so giving up half-way and
 * letting Python start again gives what Python alone gives.
 */

#define ERR (-1)
#define PYTHON 0
#define OK 1

/* Bounds of the candidate search this code handles (index._LOOKUP_TERMS, _POSTING_SCAN,
 * _SCORED are 4, 8 and 4); larger settings are left to Python. */
#define MAX_LOOKUP 8
#define MAX_SCAN 32
#define MAX_SEEN (MAX_LOOKUP * MAX_SCAN)
#define MAX_SCORED 32
#define NCOEF 15

/* index._Ex's slots, and index._Story's this code reads. */
enum { EX_WEIGHTS, EX_ORDER, EX_EVENTS, EX_ACTORS, EX_COUNTRIES, EX_NUMBERS, EX_SIZE, EX_TOTAL,
       EX_SUBJECT, EX_NSLOTS };
static const char *const ex_slots[EX_NSLOTS] = {
    "weights", "order", "events", "actors", "countries", "numbers", "size", "total", "subject",
};
enum { ST_SID, ST_EXEMPLARS, ST_FIRST, ST_LAST, ST_FOUNDER, ST_NSLOTS };
static const char *const story_slots[ST_NSLOTS] = {
    "sid", "exemplars", "first", "last", "founder",
};

/* The index module's constants, as this code reads them from its globals at every call. */
enum { K_BIAS, K_COEF, K_FOUNDER, K_JOIN, K_NEVER, K_RARE_W, K_MAX_W, K_INDEX_MIN, K_VETO,
       K_RELAX_ACTOR, K_LEAD, K_MIN_TITLE, K_LOOKUP_TERMS, K_POSTING_SCAN, K_SCORED, K_N };
static const char *const constant_names[K_N] = {
    "_BIAS", "_COEF", "_FOUNDER", "_JOIN", "_NEVER", "_RARE_W", "_MAX_W", "_INDEX_MIN", "_VETO",
    "_RELAX_ACTOR", "_LEAD", "_MIN_TITLE", "_LOOKUP_TERMS", "_POSTING_SCAN", "_SCORED",
};
static PyObject *constant_keys[K_N];  /* interned */
static PyObject *s_isdisjoint, *s_reversed, *dict_keys;

typedef struct {
    double bias, coef[NCOEF], founder, join, never, rare_w, max_w, index_min;
    int veto, relax_actor;
    Py_ssize_t min_title, lookup_terms, posting_scan, scored;
} Constants;

typedef struct {
    PyObject_HEAD
    PyTypeObject *ex_type, *story_type;
    PyObject *globals;
    Py_ssize_t ex_at[EX_NSLOTS], story_at[ST_NSLOTS];  /* the slots' offsets in an object */
} Scorer;

/* One exemplar's slots (borrowed from it: an _Ex never changes once made). */
typedef struct {
    PyObject *weights, *order, *events, *actors, *countries, *numbers, *subject;
    Py_ssize_t size;
    double total;
} Ex;

#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

static int
exact_double(PyObject *o, double *out)
{
    if (!PyFloat_CheckExact(o))
        return PYTHON;
    *out = PyFloat_AS_DOUBLE(o);
    return OK;
}

/* An exact int that a Py_ssize_t (or a long long) holds; PYTHON for any other value. */
static int
exact_ssize(PyObject *o, Py_ssize_t *out)
{
    if (!PyLong_CheckExact(o))
        return PYTHON;
    Py_ssize_t v = PyLong_AsSsize_t(o);
    if (v == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return ERR;
        PyErr_Clear();
        return PYTHON;
    }
    *out = v;
    return OK;
}

static int
exact_ll(PyObject *o, long long *out)
{
    if (!PyLong_CheckExact(o))
        return PYTHON;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow)
        return PYTHON;
    if (v == -1 && PyErr_Occurred())
        return ERR;
    *out = v;
    return OK;
}

static int
truth(PyObject *o, int *out)
{
    int t = PyObject_IsTrue(o);
    if (t < 0)
        return ERR;
    *out = t;
    return OK;
}

/* The constants _best and _logit read, from the index module's globals. PYTHON when one is not
 * of the type this code computes with, or when lead terms count (_LEAD: the title is then not
 * the weighted terms, and _Ex holds other weights). */
static int
read_constants(Scorer *s, Constants *k)
{
    PyObject *v[K_N];
    for (int i = 0; i < K_N; i++) {
        v[i] = PyDict_GetItemWithError(s->globals, constant_keys[i]);  /* borrowed */
        if (v[i] == NULL)
            return PyErr_Occurred() ? ERR : PYTHON;
    }
    int r, lead;
    if ((r = truth(v[K_LEAD], &lead)) != OK)
        return r;
    if (lead)
        return PYTHON;
    PyObject *coef = v[K_COEF];
    if (!PyTuple_CheckExact(coef) || PyTuple_GET_SIZE(coef) < NCOEF)
        return PYTHON;
    for (int i = 0; i < NCOEF; i++) {
        if (!exact_double(PyTuple_GET_ITEM(coef, i), &k->coef[i]))
            return PYTHON;
    }
    if (!exact_double(v[K_BIAS], &k->bias) || !exact_double(v[K_FOUNDER], &k->founder)
            || !exact_double(v[K_JOIN], &k->join) || !exact_double(v[K_NEVER], &k->never)
            || !exact_double(v[K_RARE_W], &k->rare_w) || !exact_double(v[K_MAX_W], &k->max_w)
            || !exact_double(v[K_INDEX_MIN], &k->index_min))
        return PYTHON;
    if ((r = truth(v[K_VETO], &k->veto)) != OK
            || (r = truth(v[K_RELAX_ACTOR], &k->relax_actor)) != OK
            || (r = exact_ssize(v[K_MIN_TITLE], &k->min_title)) != OK
            || (r = exact_ssize(v[K_LOOKUP_TERMS], &k->lookup_terms)) != OK
            || (r = exact_ssize(v[K_POSTING_SCAN], &k->posting_scan)) != OK
            || (r = exact_ssize(v[K_SCORED], &k->scored)) != OK)
        return r;
    if (k->lookup_terms < 0 || k->lookup_terms > MAX_LOOKUP || k->posting_scan < 0
            || k->posting_scan > MAX_SCAN || k->scored < 0 || k->scored > MAX_SCORED)
        return PYTHON;
    return OK;
}

static int
is_set(PyObject *o)
{
    return PyFrozenSet_CheckExact(o) || PySet_CheckExact(o);
}

/* An _Ex's slots, checked to be what _Ex.__init__ makes. */
static int
load_ex(Scorer *s, PyObject *o, Ex *e)
{
    if (Py_TYPE(o) != s->ex_type)
        return PYTHON;
    PyObject *v[EX_NSLOTS];
    for (int i = 0; i < EX_NSLOTS; i++) {
        v[i] = SLOT(o, s->ex_at[i]);
        if (v[i] == NULL)
            return PYTHON;  /* unset: Python raises AttributeError */
    }
    if (!PyDict_CheckExact(v[EX_WEIGHTS]) || !PyTuple_CheckExact(v[EX_ORDER])
            || !is_set(v[EX_EVENTS]) || !is_set(v[EX_ACTORS]) || !is_set(v[EX_COUNTRIES])
            || !is_set(v[EX_NUMBERS]) || !PyUnicode_CheckExact(v[EX_SUBJECT]))
        return PYTHON;
    int r;
    if ((r = exact_ssize(v[EX_SIZE], &e->size)) != OK)
        return r;
    if (!exact_double(v[EX_TOTAL], &e->total))
        return PYTHON;  /* an int total (int weights): Python's exact int arithmetic */
    e->weights = v[EX_WEIGHTS];
    e->order = v[EX_ORDER];
    e->events = v[EX_EVENTS];
    e->actors = v[EX_ACTORS];
    e->countries = v[EX_COUNTRIES];
    e->numbers = v[EX_NUMBERS];
    e->subject = v[EX_SUBJECT];
    return OK;
}

/* x.isdisjoint(y) (the method itself, unless one of them is empty). */
static int
disjoint(PyObject *x, PyObject *y, int *out)
{
    if (PySet_GET_SIZE(x) == 0 || PySet_GET_SIZE(y) == 0) {
        *out = 1;
        return OK;
    }
    PyObject *r = PyObject_CallMethodOneArg(x, s_isdisjoint, y);
    if (r == NULL)
        return ERR;
    *out = r == Py_True;
    Py_DECREF(r);
    return OK;
}

/* len(x.keys() & y.keys()) of two dicts: the smaller's keys looked up in the other, as dict
 * views intersect. The first two keys both hold go to first2. */
static int
common_keys(PyObject *x, PyObject *y, Py_ssize_t *count, PyObject **first2)
{
    PyObject *small = x, *big = y;
    if (PyDict_GET_SIZE(x) > PyDict_GET_SIZE(y)) {
        small = y;
        big = x;
    }
    Py_ssize_t pos = 0, n = 0;
    PyObject *key, *value;
    while (PyDict_Next(small, &pos, &key, &value)) {
        int has = PyDict_Contains(big, key);
        if (has < 0)
            return ERR;
        if (has) {
            if (first2 != NULL && n < 2)
                first2[n] = key;
            n++;
        }
    }
    *count = n;
    return OK;
}

/* d[key] as a double: PYTHON when it is missing (Python raises KeyError) or not a float. */
static int
weight_of(PyObject *d, PyObject *key, double *out)
{
    PyObject *v = PyDict_GetItemWithError(d, key);  /* borrowed */
    if (v == NULL)
        return PyErr_Occurred() ? ERR : PYTHON;
    return exact_double(v, out);
}

/* index._overlap's loop over one shared term: ``shared += min(w, v)``, ``rare += m >= _RARE_W``
 * (``w`` is a's weight, ``v`` b's). */
static int
overlap_term(const Ex *a, const Ex *b, PyObject *t, double rare_w, double *shared,
             Py_ssize_t *rare)
{
    double w, v;
    int r;
    if ((r = weight_of(a->weights, t, &w)) != OK || (r = weight_of(b->weights, t, &v)) != OK)
        return r;
    double m = w < v ? w : v;
    *shared += m;
    if (m >= rare_w)
        (*rare)++;
    return OK;
}

/* index._actor_conflict: different acting countries, neither naming the other's actor. */
static int
actor_conflict(const Constants *k, const Ex *a, const Ex *b, int *out)
{
    PyObject *aa = a->actors, *ba = b->actors;
    int d, r;
    *out = 0;
    if (PySet_GET_SIZE(aa) == 0 || PySet_GET_SIZE(ba) == 0)
        return OK;
    if ((r = disjoint(aa, ba, &d)) != OK || !d)
        return r;
    if (!k->relax_actor) {
        *out = 1;
        return OK;
    }
    if ((r = disjoint(aa, b->countries, &d)) != OK || !d)
        return r;
    if ((r = disjoint(ba, a->countries, &d)) != OK)
        return r;
    *out = d;
    return OK;
}

/* math.log1p: libm's log1p, except that a zero is returned as it is (CPython's m_log1p). */
static double
py_log1p(double x)
{
    return x == 0.0 ? x : log1p(x);
}

/* index._logit, step for step. The log-odds go to *z. */
static int
logit(const Constants *k, const Ex *a, const Ex *b, double gap_hours, double *z)
{
    PyObject *aw = a->weights, *bw = b->weights;
    /* both = aw.keys() & bw.keys(); common = len(both) */
    Py_ssize_t common;
    PyObject *first2[2];
    int r;
    if ((r = common_keys(aw, bw, &common, first2)) != OK)
        return r;
    if (common < k->min_title) {
        *z = k->never;
        return OK;
    }
    PyObject *ea = a->events, *eb = b->events;
    int d;
    if ((r = disjoint(ea, eb, &d)) != OK)
        return r;
    int agree = !d;
    int ea_any = PySet_GET_SIZE(ea) > 0, eb_any = PySet_GET_SIZE(eb) > 0;
    if (k->veto) {
        if (ea_any && eb_any && !agree) {
            *z = k->never;
            return OK;
        }
        if (PySet_GET_SIZE(a->actors) > 0 && PySet_GET_SIZE(b->actors) > 0) {
            int conflict;
            if ((r = actor_conflict(k, a, b, &conflict)) != OK)
                return r;
            if (conflict) {
                *z = k->never;
                return OK;
            }
        }
    }
    /* shared, rare, top = _overlap(a, b, both) */
    double shared = 0.0;
    Py_ssize_t rare = 0;
    if (common <= 2) {
        /* Weights are positive: 0.0 + m1 is m1 exactly and m1 + m2 is m2 + m1, so one or two
         * shared terms sum to the same double in any order, without the set (whose making
         * costs about 2,600 instructions). */
        for (Py_ssize_t i = 0; i < common; i++) {
            if ((r = overlap_term(a, b, first2[i], k->rare_w, &shared, &rare)) != OK)
                return r;
        }
    }
    else {
        /* A sum of three or more depends on its order: the order of Python's own set,
         * aw.keys() & bw.keys() (made by the very operation, whatever the version's rule). */
        PyObject *ka = PyObject_CallOneArg(dict_keys, aw);
        PyObject *kb = ka != NULL ? PyObject_CallOneArg(dict_keys, bw) : NULL;
        PyObject *both = kb != NULL ? PyNumber_And(ka, kb) : NULL;
        Py_XDECREF(ka);
        Py_XDECREF(kb);
        PyObject *it = both != NULL ? PyObject_GetIter(both) : NULL;
        Py_XDECREF(both);
        if (it == NULL)
            return ERR;
        PyObject *t;
        r = OK;
        while (r == OK && (t = PyIter_Next(it)) != NULL) {
            r = overlap_term(a, b, t, k->rare_w, &shared, &rare);
            Py_DECREF(t);
        }
        Py_DECREF(it);
        if (r != OK)
            return r;
        if (PyErr_Occurred())
            return ERR;
    }
    /* top: the heaviest first term either has that the other lacks */
    double top = 0.0;
    PyObject *order = a->order;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(order); i++) {
        PyObject *t = PyTuple_GET_ITEM(order, i);
        int has = PyDict_Contains(bw, t);
        if (has < 0)
            return ERR;
        if (!has) {
            if ((r = weight_of(aw, t, &top)) != OK)
                return r;
            break;
        }
    }
    order = b->order;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(order); i++) {
        PyObject *t = PyTuple_GET_ITEM(order, i);
        int has = PyDict_Contains(aw, t);
        if (has < 0)
            return ERR;
        if (!has) {
            double v;
            if ((r = weight_of(bw, t, &v)) != OK)
                return r;
            if (v > top)
                top = v;
            break;
        }
    }
    PyObject *na = a->numbers, *nb = b->numbers;
    if ((r = disjoint(na, nb, &d)) != OK)
        return r;
    int num_shared = !d;
    Py_ssize_t la = a->size, lb = b->size;
    double ta = a->total, tb = b->total;
    const double *c = k->coef;
    /* The sum as Python writes it: C's precedence and left-to-right association of + and * are
     * Python's, and an int times a float is the int made a double (exact for these). la / lb
     * of two ints is their correctly rounded quotient in Python, as it is of two doubles that
     * hold them exactly. */
    double s = (k->bias + c[0] * 2.0 * shared / (ta + tb)
                + c[1] * shared / (ta < tb ? ta : tb)
                + c[2] * py_log1p(shared)
                + c[3] * (double)(common < 6 ? common : 6)
                + c[4] * (double)(rare < 4 ? rare : 4)
                + c[5] * top / k->max_w
                + c[11] * py_log1p(gap_hours)
                + c[12] * ((la && lb) ? (la < lb ? (double)la / (double)lb
                                                  : (double)lb / (double)la) : 0.0));
    if (num_shared)
        s += c[6];
    else if (PySet_GET_SIZE(na) > 0 && PySet_GET_SIZE(nb) > 0)
        s += c[7];
    if (agree)
        s += c[8];
    if (!k->veto) {
        if (ea_any && eb_any && !agree)
            s += c[9];
        int conflict;
        if ((r = actor_conflict(k, a, b, &conflict)) != OK)
            return r;
        if (conflict)
            s += c[10];
    }
    PyObject *sa = a->subject, *sb = b->subject;
    if (PyUnicode_GET_LENGTH(sa) > 0 && PyUnicode_GET_LENGTH(sb) > 0) {
        int in_b = PyDict_Contains(bw, sa);
        int in_a = in_b < 0 ? -1 : PyDict_Contains(aw, sb);
        if (in_a < 0)
            return ERR;
        int found = in_b + in_a;
        if (found)
            s += c[13] * (double)found;
        else {
            /* aw.get(sa, 0.0) >= _RARE_W and bw.get(sb, 0.0) >= _RARE_W */
            double wa = 0.0, wb = 0.0;
            PyObject *v = PyDict_GetItemWithError(aw, sa);
            if (v == NULL && PyErr_Occurred())
                return ERR;
            if (v != NULL && !exact_double(v, &wa))
                return PYTHON;
            if (wa >= k->rare_w) {
                v = PyDict_GetItemWithError(bw, sb);
                if (v == NULL && PyErr_Occurred())
                    return ERR;
                if (v != NULL && !exact_double(v, &wb))
                    return PYTHON;
                if (wb >= k->rare_w)
                    s += c[14];
            }
        }
    }
    *z = s;
    return OK;
}

/* x - y and x + y, or 0 when they overflow a long long. */
static int
sub_ll(long long x, long long y, long long *out)
{
    if ((y > 0 && x < LLONG_MIN + y) || (y < 0 && x > LLONG_MAX + y))
        return 0;
    *out = x - y;
    return 1;
}

static int
add_ll(long long x, long long y, long long *out)
{
    if ((y > 0 && x > LLONG_MAX - y) || (y < 0 && x < LLONG_MIN - y))
        return 0;
    *out = x + y;
    return 1;
}

/* index._hours: abs(us) / 10**6 / 3600.0. Python's int division is correctly rounded, and so
 * is one double division of ints a double holds exactly (up to 2**53 µs, 285 years). */
static int
hours(long long us, double *out)
{
    if (us < -(1LL << 53) || us > (1LL << 53))
        return PYTHON;
    if (us < 0)
        us = -us;
    *out = (double)us / 1000000.0 / 3600.0;
    return OK;
}

/* _best's scores of one story's exemplars: _logit against the founder at the hours since the
 * story's first article, and, unless that is below _FOUNDER (*skip set), against each later
 * exemplar at the hours since its last; the best into *score. */
static int
score_exemplars(Scorer *s, const Constants *k, const Ex *a, PyObject *exs, long long at,
                long long first, long long last, int *skip, double *score)
{
    long long gap_us;
    double gap, z, best;
    Ex b;
    int r;
    if (!sub_ll(at, first, &gap_us) || (r = hours(gap_us, &gap)) != OK)
        return PYTHON;
    PyObject *ex = Py_NewRef(PyList_GET_ITEM(exs, 0));
    if ((r = load_ex(s, ex, &b)) == OK)
        r = logit(k, a, &b, gap, &z);
    Py_DECREF(ex);
    if (r != OK)
        return r;
    if (z < k->founder)
        return OK;  /* if founder < _FOUNDER: continue */
    best = z;
    if (PyList_GET_SIZE(exs) > 1) {
        if (!sub_ll(at, last, &gap_us) || (r = hours(gap_us, &gap)) != OK)
            return PYTHON;
        for (Py_ssize_t i = 1; i < PyList_GET_SIZE(exs); i++) {
            ex = Py_NewRef(PyList_GET_ITEM(exs, i));
            if ((r = load_ex(s, ex, &b)) == OK)
                r = logit(k, a, &b, gap, &z);
            Py_DECREF(ex);
            if (r != OK)
                return r;
            if (z > best)
                best = z;
        }
    }
    *skip = 0;
    *score = best;
    return OK;
}

/* One candidate story of _best's loop (held by the caller): *skip set when it cannot take the
 * article (out of the window, too few terms shared with its founder, the founder's log-odds
 * below _FOUNDER), else its best log-odds into *score. */
static int
score_story(Scorer *s, const Constants *k, const Ex *a, long long at, long long window,
            PyObject *st, int *skip, double *score)
{
    *skip = 1;
    if (Py_TYPE(st) != s->story_type)
        return PYTHON;
    PyObject *v[ST_NSLOTS];
    for (int i = 0; i < ST_NSLOTS; i++) {
        v[i] = SLOT(st, s->story_at[i]);
        if (v[i] == NULL)
            return PYTHON;
    }
    long long first, last, lo, hi;
    int r;
    if ((r = exact_ll(v[ST_FIRST], &first)) != OK || (r = exact_ll(v[ST_LAST], &last)) != OK)
        return r;
    /* if at < first - window or at > last + window: continue */
    if (!sub_ll(first, window, &lo) || !add_ll(last, window, &hi))
        return PYTHON;
    if (at < lo || at > hi)
        return OK;
    /* if len(terms & st.founder.keys()) < _MIN_TITLE: continue */
    PyObject *founder = v[ST_FOUNDER];
    if (!PyDict_CheckExact(founder))
        return PYTHON;
    Py_ssize_t common;
    if ((r = common_keys(a->weights, founder, &common, NULL)) != OK)
        return r;
    if (common < k->min_title)
        return OK;
    PyObject *exs = v[ST_EXEMPLARS];
    if (!PyList_CheckExact(exs) || PyList_GET_SIZE(exs) == 0)
        return PYTHON;  /* no founder: Python raises IndexError */
    /* Held while scoring: making a set (_logit's) may run the cyclic collector, and with it
     * any finalizer. */
    Py_INCREF(exs);
    r = score_exemplars(s, k, a, exs, at, first, last, skip, score);
    Py_DECREF(exs);
    return r;
}

/* StoryIndex._best: the story the article (its exemplar ``a``) joins, None, or NotImplemented
 * (*out) for Python to decide. */
static int
best_story(Scorer *s, PyObject *a_obj, long long at, PyObject *postings, PyObject *numbered,
           long long window, PyObject **out)
{
    Constants k;
    Ex a;
    int r;
    if ((r = read_constants(s, &k)) != OK || (r = load_ex(s, a_obj, &a)) != OK)
        return r;
    if (!PyDict_CheckExact(postings) || !PyDict_CheckExact(numbered))
        return PYTHON;

    /* lookup = sorted([(w, t) for t, w in a.weights.items() if w >= _INDEX_MIN],
     *                 reverse=True)[:_LOOKUP_TERMS]
     * kept sorted as it is filled: heaviest first, ties by term, greater first. */
    PyObject *lt[MAX_LOOKUP + 1];
    double lw[MAX_LOOKUP + 1];
    Py_ssize_t nlook = 0, pos = 0;
    PyObject *t, *wobj;
    while (PyDict_Next(a.weights, &pos, &t, &wobj)) {
        double w;
        if (!exact_double(wobj, &w) || !PyUnicode_CheckExact(t))
            return PYTHON;
        if (!(w >= k.index_min))
            continue;
        Py_ssize_t i = nlook;
        while (i > 0 && (w > lw[i - 1]
                         || (w == lw[i - 1] && PyUnicode_Compare(t, lt[i - 1]) > 0)))
            i--;
        if (i >= k.lookup_terms)
            continue;
        for (Py_ssize_t j = nlook < k.lookup_terms ? nlook : k.lookup_terms - 1; j > i; j--) {
            lt[j] = lt[j - 1];
            lw[j] = lw[j - 1];
        }
        lt[i] = t;
        lw[i] = w;
        if (nlook < k.lookup_terms)
            nlook++;
    }

    /* seen += islice(reversed(postings[t]), _POSTING_SCAN), term by term */
    /* Story numbers are exact ints, equal as dict keys when their values are. */
    PyObject *seen[MAX_SEEN];
    long long seen_v[MAX_SEEN];
    Py_ssize_t nseen = 0;
    PyObject *best = NULL;
    r = OK;
    for (Py_ssize_t i = 0; i < nlook && r == OK; i++) {
        PyObject *ids = PyDict_GetItemWithError(postings, lt[i]);  /* borrowed */
        if (ids == NULL) {
            if (PyErr_Occurred())
                r = ERR;
            continue;
        }
        if (!PyDict_CheckExact(ids)) {
            r = PYTHON;
            break;
        }
        if (PyDict_GET_SIZE(ids) == 0 || k.posting_scan == 0)
            continue;
        PyObject *it = PyObject_CallMethodNoArgs(ids, s_reversed);
        if (it == NULL) {
            r = ERR;
            break;
        }
        for (Py_ssize_t n = 0; n < k.posting_scan; n++) {
            PyObject *num = PyIter_Next(it);
            if (num == NULL) {
                if (PyErr_Occurred())
                    r = ERR;
                break;
            }
            r = exact_ll(num, &seen_v[nseen]);
            if (r != OK) {
                Py_DECREF(num);
                break;
            }
            seen[nseen++] = num;
        }
        Py_DECREF(it);
    }
    if (r != OK)
        goto done;

    /* The candidates: the stories most of those terms find, ties in the order found. */
    PyObject *chosen[MAX_SEEN];
    Py_ssize_t nchosen = 0;
    PyObject *distinct[MAX_SEEN];
    long long distinct_v[MAX_SEEN];
    Py_ssize_t counts[MAX_SEEN], ndistinct = 0;
    for (Py_ssize_t i = 0; i < nseen; i++) {
        Py_ssize_t j = 0;
        while (j < ndistinct && distinct_v[j] != seen_v[i])
            j++;
        if (j == ndistinct) {
            distinct[ndistinct] = seen[i];
            distinct_v[ndistinct] = seen_v[i];
            counts[ndistinct++] = 0;
        }
        counts[j]++;
    }
    if (nseen <= k.scored) {
        /* dict.fromkeys(seen): each once, in the order found */
        for (Py_ssize_t i = 0; i < ndistinct; i++)
            chosen[nchosen++] = distinct[i];
    }
    else if (ndistinct == nseen) {
        /* seen[:_SCORED] */
        for (Py_ssize_t i = 0; i < k.scored; i++)
            chosen[nchosen++] = seen[i];
    }
    else {
        /* sorted(found.items(), key=_COUNT, reverse=True)[:_SCORED]: the most found first, a
         * stable sort keeping ties in the order found. */
        while (nchosen < k.scored && nchosen < ndistinct) {
            Py_ssize_t top = -1;
            for (Py_ssize_t j = 0; j < ndistinct; j++) {
                if (counts[j] >= 0 && (top < 0 || counts[j] > counts[top]))
                    top = j;
            }
            chosen[nchosen++] = distinct[top];
            counts[top] = -1;
        }
    }

    /* The scoring loop over the chosen stories. */
    double best_score = k.join;
    for (Py_ssize_t i = 0; i < nchosen; i++) {
        PyObject *st = PyDict_GetItemWithError(numbered, chosen[i]);  /* borrowed */
        if (st == NULL) {
            r = PyErr_Occurred() ? ERR : PYTHON;  /* Python raises KeyError */
            goto done;
        }
        Py_INCREF(st);
        int skip;
        double score;
        r = score_story(s, &k, &a, at, window, st, &skip, &score);
        if (r != OK || skip) {
            Py_DECREF(st);
            if (r != OK)
                goto done;
            continue;
        }
        /* if score < best_score or (best is not None
         *                           and (score, st.sid) <= (best_score, best.sid)): continue */
        int worse = score < best_score;
        if (!worse && best != NULL) {
            if (score == best_score) {
                PyObject *sid = SLOT(st, s->story_at[ST_SID]);
                PyObject *bsid = SLOT(best, s->story_at[ST_SID]);
                if (!PyUnicode_CheckExact(sid) || !PyUnicode_CheckExact(bsid)) {
                    Py_DECREF(st);
                    r = PYTHON;
                    goto done;
                }
                worse = PyUnicode_Compare(sid, bsid) <= 0;
            }
            else
                worse = score <= best_score;
        }
        if (worse) {
            Py_DECREF(st);
            continue;
        }
        Py_XSETREF(best, st);
        best_score = score;
    }
done:
    for (Py_ssize_t i = 0; i < nseen; i++)
        Py_DECREF(seen[i]);
    if (r != OK) {
        Py_XDECREF(best);
        return r;
    }
    *out = best != NULL ? best : Py_NewRef(Py_None);
    return OK;
}

/* best(a, at, postings, numbered, window): StoryIndex._best(a, at) of the index whose
 * _postings, _numbered and _window these are. */
static PyObject *
scorer_best(Scorer *s, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "best(a, at, postings, numbered, window)");
        return NULL;
    }
    long long at, window;
    int r;
    if ((r = exact_ll(args[1], &at)) != OK || (r = exact_ll(args[4], &window)) != OK)
        goto out;
    PyObject *got;
    r = best_story(s, args[0], at, args[2], args[3], window, &got);
    if (r == OK)
        return got;
out:
    return r == ERR ? NULL : Py_NewRef(Py_NotImplemented);
}

/* logit(a, b, gap_hours): index._logit(a, b, gap_hours). */
static PyObject *
scorer_logit(Scorer *s, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "logit(a, b, gap_hours)");
        return NULL;
    }
    Constants k;
    Ex a, b;
    double gap, z;
    int r;
    if (!exact_double(args[2], &gap))
        r = PYTHON;
    else if ((r = read_constants(s, &k)) == OK && (r = load_ex(s, args[0], &a)) == OK
             && (r = load_ex(s, args[1], &b)) == OK && (r = logit(&k, &a, &b, gap, &z)) == OK)
        return PyFloat_FromDouble(z);
    return r == ERR ? NULL : Py_NewRef(Py_NotImplemented);
}

/* The offsets of a type's slots, from their member descriptors (as _cmatch's slot_offsets). */
static int
slot_offsets(PyTypeObject *type, const char *const *names, int n, Py_ssize_t *at)
{
    for (int i = 0; i < n; i++) {
        PyObject *d = PyObject_GetAttrString((PyObject *)type, names[i]);
        if (d == NULL)
            return -1;
        int good = 0;
        if (Py_IS_TYPE(d, &PyMemberDescr_Type)) {
            PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
            good = m->type == T_OBJECT_EX && PyType_IsSubtype(type, PyDescr_TYPE(d))
                   && m->offset >= (Py_ssize_t)sizeof(PyObject)
                   && m->offset + (Py_ssize_t)sizeof(PyObject *) <= type->tp_basicsize;
            at[i] = m->offset;
        }
        Py_DECREF(d);
        if (!good) {
            PyErr_Format(PyExc_TypeError, "%s.%s is not an object slot", type->tp_name,
                         names[i]);
            return -1;
        }
    }
    return 0;
}

static PyObject *
scorer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyTypeObject *ex_type, *story_type;
    PyObject *globals;
    if (kwds != NULL && PyDict_GET_SIZE(kwds) > 0) {
        PyErr_SetString(PyExc_TypeError, "Scorer() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!O!O!:Scorer", &PyType_Type, &ex_type, &PyType_Type,
                                 &story_type, &PyDict_Type, &globals))
        return NULL;
    if (ex_type->tp_itemsize != 0 || story_type->tp_itemsize != 0) {
        PyErr_SetString(PyExc_TypeError, "Scorer: variable-size types");
        return NULL;
    }
    Scorer *s = (Scorer *)type->tp_alloc(type, 0);
    if (s == NULL)
        return NULL;
    s->ex_type = (PyTypeObject *)Py_NewRef(ex_type);
    s->story_type = (PyTypeObject *)Py_NewRef(story_type);
    s->globals = Py_NewRef(globals);
    if (slot_offsets(ex_type, ex_slots, EX_NSLOTS, s->ex_at) < 0
            || slot_offsets(story_type, story_slots, ST_NSLOTS, s->story_at) < 0) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

static int
scorer_traverse(Scorer *s, visitproc visit, void *arg)
{
    Py_VISIT(s->ex_type);
    Py_VISIT(s->story_type);
    Py_VISIT(s->globals);
    return 0;
}

static int
scorer_clear(Scorer *s)
{
    Py_CLEAR(s->ex_type);
    Py_CLEAR(s->story_type);
    Py_CLEAR(s->globals);
    return 0;
}

static void
scorer_dealloc(Scorer *s)
{
    PyObject_GC_UnTrack(s);
    scorer_clear(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef scorer_methods[] = {
    {"best", (PyCFunction)(void (*)(void))scorer_best, METH_FASTCALL,
     "best(a, at, postings, numbered, window): StoryIndex._best, or NotImplemented."},
    {"logit", (PyCFunction)(void (*)(void))scorer_logit, METH_FASTCALL,
     "logit(a, b, gap_hours): index._logit, or NotImplemented."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScorerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "watchers.stories._cstories.Scorer",
    .tp_basicsize = sizeof(Scorer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The story decision (index.StoryIndex._best, index._logit) over _Ex and _Story.",
    .tp_new = scorer_new,
    .tp_dealloc = (destructor)scorer_dealloc,
    .tp_traverse = (traverseproc)scorer_traverse,
    .tp_clear = (inquiry)scorer_clear,
    .tp_methods = scorer_methods,
};

static int
scorer_init(void)
{
    for (int i = 0; i < K_N; i++) {
        if (constant_keys[i] == NULL
                && (constant_keys[i] = PyUnicode_InternFromString(constant_names[i])) == NULL)
            return -1;
    }
    if (s_isdisjoint == NULL && (s_isdisjoint = PyUnicode_InternFromString("isdisjoint")) == NULL)
        return -1;
    if (s_reversed == NULL && (s_reversed = PyUnicode_InternFromString("__reversed__")) == NULL)
        return -1;
    if (dict_keys == NULL
            && (dict_keys = PyObject_GetAttrString((PyObject *)&PyDict_Type, "keys")) == NULL)
        return -1;
    return PyType_Ready(&ScorerType);
}

/* exemplar(weights): features._exemplar, the (stem, weight) pairs of a dict sorted by stem (as
 * sorted() orders its keys) in a tuple of 2-tuples. A pair holding nothing the cyclic collector
 * tracks (a str and a float, as signatures hold) is left out of it, and so is the tuple when
 * every pair is (see text.untrack: no cycle can run through them). */
static PyObject *
exemplar(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (!arg_count("exemplar", nargs, 1))
        return NULL;
    if (!PyDict_CheckExact(args[0])) {  /* a subclass may iterate otherwise than its items */
        PyErr_Format(PyExc_TypeError, "exemplar() argument 1 must be dict, not %.50s",
                     Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    PyObject *weights = args[0];
    PyObject *keys = PyDict_Keys(weights);
    if (keys == NULL)
        return NULL;
    if (PyList_Sort(keys) < 0) {
        Py_DECREF(keys);
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(keys);
    PyObject *out = PyTuple_New(n);
    if (out == NULL) {
        Py_DECREF(keys);
        return NULL;
    }
    int tracked = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        PyObject *w = PyDict_GetItemWithError(weights, k);
        if (w == NULL) {
            if (!PyErr_Occurred())  /* the sort's comparisons ran Python code that took it out */
                PyErr_SetObject(PyExc_KeyError, k);
            Py_DECREF(keys);
            Py_DECREF(out);
            return NULL;
        }
        PyObject *pair = PyTuple_Pack(2, k, w);
        if (pair == NULL) {
            Py_DECREF(keys);
            Py_DECREF(out);
            return NULL;
        }
        if ((PyObject_IS_GC(k) && PyObject_GC_IsTracked(k))
                || (PyObject_IS_GC(w) && PyObject_GC_IsTracked(w)))
            tracked = 1;
        else if (PyObject_GC_IsTracked(pair))
            PyObject_GC_UnTrack(pair);
        PyTuple_SET_ITEM(out, i, pair);
    }
    Py_DECREF(keys);
    if (!tracked && PyObject_GC_IsTracked(out))
        PyObject_GC_UnTrack(out);
    return out;
}

static PyMethodDef methods[] = {
    {"prepare", (PyCFunction)(void (*)(void))prepare, METH_FASTCALL,
     "index._Ex's walk over an exemplar."},
    {"post", (PyCFunction)(void (*)(void))post, METH_FASTCALL,
     "index._post: a story's number last in its terms' postings lists."},
    {"terms", (PyCFunction)(void (*)(void))terms, METH_FASTCALL,
     "features._terms over a FieldText's token lists."},
    {"exemplar_text", (PyCFunction)(void (*)(void))exemplar_text, METH_FASTCALL,
     "json.dumps of an exemplar, compact."},
    {"exemplar", (PyCFunction)(void (*)(void))exemplar, METH_FASTCALL,
     "features._exemplar: a dict's items sorted by key, as a tuple of pairs."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cstories", "Story signature helpers and the story decision in C.",
    -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__cstories(void)
{
    if (s_zero == NULL) {
        s_zero = PyUnicode_InternFromString("0.0");
        s_negzero = PyUnicode_InternFromString("-0.0");
        if (s_zero == NULL || s_negzero == NULL)
            return NULL;
    }
    if (scorer_init() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Scorer", (PyObject *)&ScorerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
