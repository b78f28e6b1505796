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
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

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

static PyObject *
terms(PyObject *self, PyObject *args)
{
    PyObject *keys, *norms, *pos, *last, *starts, *ends, *words, *word_of, *months, *speaks;
    PyObject *into, *zero, *year;
    Py_ssize_t n, colon;
    double number;
    if (!PyArg_ParseTuple(args, "O!O!OOO!O!nnO!OO!O!O!OOd", &PyList_Type, &keys, &PyList_Type,
                          &norms, &pos, &last, &PyList_Type, &starts, &PyList_Type, &ends, &n,
                          &colon, &PyDict_Type, &words, &word_of, &PyFrozenSet_Type, &months,
                          &PyFrozenSet_Type, &speaks, &PyDict_Type, &into, &zero, &year,
                          &number))
        return NULL;
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
    /* Equal positive floats have equal reprs; 1 == 1.0 cannot meet here (floats only). */
    PyObject *r = PyDict_GetItemWithError(reprs, w);
    if (r != NULL) {
        Py_INCREF(r);
        return r;
    }
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
    return r;
}

#define SMALL 32

static PyObject *
exemplar_text(PyObject *self, PyObject *args)
{
    PyObject *ex, *pair_text, *reprs;
    Py_ssize_t max;
    if (!PyArg_ParseTuple(args, "OOO!n", &ex, &pair_text, &PyDict_Type, &reprs, &max))
        return NULL;
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
            if (PyUnicode_CopyCharacters(out, at, terms[i], 0, len) < 0)
                goto fail;
            at += len;
            PyUnicode_WRITE(kind, data, at++, '"');
            PyUnicode_WRITE(kind, data, at++, ',');
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(texts[i]);
        if (PyUnicode_CopyCharacters(out, at, texts[i], 0, len) < 0)
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
prepare(PyObject *self, PyObject *args)
{
    PyObject *ex;
    double number_w;
    if (!PyArg_ParseTuple(args, "O!d", &PyTuple_Type, &ex, &number_w))
        return NULL;
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

static PyMethodDef methods[] = {
    {"prepare", prepare, METH_VARARGS, "index._Ex's walk over an exemplar."},
    {"terms", terms, METH_VARARGS, "features._terms over a FieldText's token lists."},
    {"exemplar_text", exemplar_text, METH_VARARGS, "json.dumps of an exemplar, compact."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cstories", "Story signature helpers in C.", -1, methods,
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
    return PyModule_Create(&module);
}
