/*
 * kijirest.store.hbase._thrift2fast: the rows of a Thrift 2 `getScannerRows` reply, read straight
 * into the store's row tuples.
 *
 * thriftpy2 decodes every TColumnValue into an object (one allocation, one Python-level setattr
 * per field) that the store then copies into a (family, qualifier, timestamp, value) tuple; at a
 * few hundred thousand cells a second that was the largest single cost of a scan. This module
 * reads the Thrift binary protocol (strict, big-endian, as HBase's Thrift 2 server writes it) and
 * builds the tuples directly. It parses whole TResult structs only: given a buffer that holds a
 * part of a reply, it returns the complete rows and where the next one starts, so a reply is read
 * in one pass while it arrives. Everything around the list (message header, exceptions) stays in
 * Python and thriftpy2 (see fastread.py).
 *
 *   parse_results(buffer, pos, count) -> (rows, end)
 *       at most `count` TResult structs from buffer[pos:]; rows is a list of
 *       (row bytes | None, [(family, qualifier, timestamp | None, value), ...]); `end` is the
 *       offset after the last complete struct. ValueError on bytes that are not a TResult.
 *   skip_value(buffer, pos, ttype) -> end | -1
 *       the offset after one complete value of Thrift type `ttype` at `pos`, -1 if the buffer
 *       ends first. ValueError on malformed data.
 *   message_end(buffer) -> end | -1
 *       the offset after one complete strict binary message (header + one struct), -1 if the
 *       buffer ends first.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

enum {
    T_STOP = 0, T_BOOL = 2, T_BYTE = 3, T_DOUBLE = 4, T_I16 = 6, T_I32 = 8, T_I64 = 10,
    T_STRING = 11, T_STRUCT = 12, T_MAP = 13, T_SET = 14, T_LIST = 15
};

enum { OK = 0, INCOMPLETE = 1, MALFORMED = 2, FAILED = 3 /* a Python exception is set */, STOPPED = 4 };

#define MAX_DEPTH 64

typedef struct {
    const unsigned char *p;
    Py_ssize_t pos;
    Py_ssize_t end;
    const char *why; /* set with MALFORMED */
} Reader;

static inline int have(const Reader *r, Py_ssize_t n) { return r->end - r->pos >= n; }

static inline int16_t get_i16(Reader *r) {
    const unsigned char *q = r->p + r->pos;
    r->pos += 2;
    return (int16_t)(((uint16_t)q[0] << 8) | q[1]);
}

static inline int32_t get_i32(Reader *r) {
    const unsigned char *q = r->p + r->pos;
    r->pos += 4;
    return (int32_t)(((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) | ((uint32_t)q[2] << 8) | q[3]);
}

static inline int64_t get_i64(Reader *r) {
    const unsigned char *q = r->p + r->pos;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | q[i];
    r->pos += 8;
    return (int64_t)v;
}

static int malformed(Reader *r, const char *why) {
    r->why = why;
    return MALFORMED;
}

/* The next field header of a struct: OK with its type and id, STOPPED at the struct's end. */
static int next_field(Reader *r, int *ttype, int *id) {
    if (!have(r, 1)) return INCOMPLETE;
    *ttype = r->p[r->pos++];
    if (*ttype == T_STOP) return STOPPED;
    if (!have(r, 2)) return INCOMPLETE;
    *id = get_i16(r);
    return OK;
}

static int skip(Reader *r, int ttype, int depth) {
    if (depth > MAX_DEPTH) return malformed(r, "values nested too deeply");
    switch (ttype) {
    case T_BOOL:
    case T_BYTE:
        if (!have(r, 1)) return INCOMPLETE;
        r->pos += 1;
        return OK;
    case T_I16:
        if (!have(r, 2)) return INCOMPLETE;
        r->pos += 2;
        return OK;
    case T_I32:
        if (!have(r, 4)) return INCOMPLETE;
        r->pos += 4;
        return OK;
    case T_I64:
    case T_DOUBLE:
        if (!have(r, 8)) return INCOMPLETE;
        r->pos += 8;
        return OK;
    case T_STRING: {
        if (!have(r, 4)) return INCOMPLETE;
        int32_t n = get_i32(r);
        if (n < 0) return malformed(r, "negative string length");
        if (!have(r, n)) return INCOMPLETE;
        r->pos += n;
        return OK;
    }
    case T_STRUCT:
        for (;;) {
            int t, id;
            int rc = next_field(r, &t, &id);
            if (rc == STOPPED) return OK;
            if (rc == OK) rc = skip(r, t, depth + 1);
            if (rc != OK) return rc;
        }
    case T_MAP: {
        if (!have(r, 6)) return INCOMPLETE;
        int kt = r->p[r->pos], vt = r->p[r->pos + 1];
        r->pos += 2;
        int32_t n = get_i32(r);
        if (n < 0) return malformed(r, "negative map size");
        for (int32_t i = 0; i < n; i++) {
            int rc = skip(r, kt, depth + 1);
            if (rc == OK) rc = skip(r, vt, depth + 1);
            if (rc != OK) return rc;
        }
        return OK;
    }
    case T_SET:
    case T_LIST: {
        if (!have(r, 5)) return INCOMPLETE;
        int et = r->p[r->pos++];
        int32_t n = get_i32(r);
        if (n < 0) return malformed(r, "negative list size");
        for (int32_t i = 0; i < n; i++) {
            int rc = skip(r, et, depth + 1);
            if (rc != OK) return rc;
        }
        return OK;
    }
    default:
        return malformed(r, "unknown Thrift type");
    }
}

/* A binary field's value (after its field header) as a new bytes object in *out. */
static int read_binary(Reader *r, PyObject **out) {
    if (!have(r, 4)) return INCOMPLETE;
    int32_t n = get_i32(r);
    if (n < 0) return malformed(r, "negative binary length");
    if (!have(r, n)) return INCOMPLETE;
    PyObject *b = PyBytes_FromStringAndSize((const char *)r->p + r->pos, n);
    if (b == NULL) return FAILED;
    r->pos += n;
    Py_XSETREF(*out, b);
    return OK;
}

/* One TColumnValue -> (family, qualifier, timestamp | None, value). */
static int read_cell(Reader *r, PyObject **out) {
    PyObject *family = NULL, *qualifier = NULL, *value = NULL, *ts = NULL;
    int rc, t, id;
    while ((rc = next_field(r, &t, &id)) == OK) {
        if (t == T_STRING && id == 1) rc = read_binary(r, &family);
        else if (t == T_STRING && id == 2) rc = read_binary(r, &qualifier);
        else if (t == T_STRING && id == 3) rc = read_binary(r, &value);
        else if (t == T_I64 && id == 4) {
            if (!have(r, 8)) { rc = INCOMPLETE; break; }
            PyObject *n = PyLong_FromLongLong(get_i64(r));
            if (n == NULL) { rc = FAILED; break; }
            Py_XSETREF(ts, n);
        } else rc = skip(r, t, 1); /* tags, type, fields of later HBase versions */
        if (rc != OK) break;
    }
    if (rc == STOPPED) rc = OK;
    if (rc == OK && (family == NULL || qualifier == NULL || value == NULL))
        rc = malformed(r, "a TColumnValue without family, qualifier or value");
    if (rc == OK) {
        PyObject *cell = PyTuple_New(4);
        if (cell == NULL) rc = FAILED;
        else {
            if (ts == NULL) { ts = Py_None; Py_INCREF(ts); }
            PyTuple_SET_ITEM(cell, 0, family);
            PyTuple_SET_ITEM(cell, 1, qualifier);
            PyTuple_SET_ITEM(cell, 2, ts);
            PyTuple_SET_ITEM(cell, 3, value);
            *out = cell;
            return OK;
        }
    }
    Py_XDECREF(family);
    Py_XDECREF(qualifier);
    Py_XDECREF(value);
    Py_XDECREF(ts);
    return rc;
}

/* One TResult -> (row | None, [cells]). */
static int read_result(Reader *r, PyObject **out) {
    PyObject *row = NULL, *cells = NULL;
    int rc, t, id;
    while ((rc = next_field(r, &t, &id)) == OK) {
        if (t == T_STRING && id == 1) rc = read_binary(r, &row);
        else if (t == T_LIST && id == 2) {
            if (!have(r, 5)) { rc = INCOMPLETE; break; }
            int et = r->p[r->pos++];
            int32_t n = get_i32(r);
            if (et != T_STRUCT) { rc = malformed(r, "columnValues is not a list of structs"); break; }
            if (n < 0) { rc = malformed(r, "negative list size"); break; }
            if (n > r->end - r->pos) { rc = INCOMPLETE; break; } /* >= 1 byte per cell */
            PyObject *list = PyList_New(n);
            if (list == NULL) { rc = FAILED; break; }
            for (int32_t i = 0; i < n; i++) {
                PyObject *cell = NULL;
                rc = read_cell(r, &cell);
                if (rc != OK) break;
                PyList_SET_ITEM(list, i, cell);
            }
            if (rc != OK) { Py_DECREF(list); break; }
            Py_XSETREF(cells, list);
        } else rc = skip(r, t, 1); /* stale, partial, later fields */
        if (rc != OK) break;
    }
    if (rc == STOPPED) rc = OK;
    if (rc == OK) {
        if (cells == NULL && (cells = PyList_New(0)) == NULL) rc = FAILED;
        else {
            if (row == NULL) { row = Py_None; Py_INCREF(row); }
            PyObject *pair = PyTuple_Pack(2, row, cells);
            if (pair == NULL) rc = FAILED;
            else {
                Py_DECREF(row);
                Py_DECREF(cells);
                *out = pair;
                return OK;
            }
        }
    }
    Py_XDECREF(row);
    Py_XDECREF(cells);
    return rc;
}

static int start(PyObject *obj, Py_buffer *view, Py_ssize_t pos, Reader *r) {
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) != 0) return -1;
    if (pos < 0 || pos > view->len) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "position outside the buffer");
        return -1;
    }
    r->p = (const unsigned char *)view->buf;
    r->pos = pos;
    r->end = view->len;
    r->why = NULL;
    return 0;
}

static PyObject *parse_results(PyObject *self, PyObject *args) {
    PyObject *obj;
    Py_ssize_t pos, count;
    if (!PyArg_ParseTuple(args, "Onn:parse_results", &obj, &pos, &count)) return NULL;
    Py_buffer view;
    Reader r;
    if (start(obj, &view, pos, &r) != 0) return NULL;
    PyObject *rows = PyList_New(0);
    if (rows == NULL) { PyBuffer_Release(&view); return NULL; }
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t at = r.pos;
        PyObject *row = NULL;
        int rc = read_result(&r, &row);
        if (rc == INCOMPLETE) { r.pos = at; break; }
        if (rc == OK) {
            int failed = PyList_Append(rows, row);
            Py_DECREF(row);
            if (failed == 0) continue;
            rc = FAILED;
        }
        if (rc == MALFORMED) PyErr_Format(PyExc_ValueError, "malformed TResult at offset %zd: %s", at, r.why);
        PyBuffer_Release(&view);
        Py_DECREF(rows);
        return NULL;
    }
    PyBuffer_Release(&view);
    PyObject *end = PyLong_FromSsize_t(r.pos);
    if (end == NULL) { Py_DECREF(rows); return NULL; }
    PyObject *answer = PyTuple_Pack(2, rows, end);
    Py_DECREF(rows);
    Py_DECREF(end);
    return answer;
}

static PyObject *finish(Py_buffer *view, Reader *r, int rc) {
    PyBuffer_Release(view);
    if (rc == OK) return PyLong_FromSsize_t(r->pos);
    if (rc == INCOMPLETE) return PyLong_FromLong(-1);
    if (rc == MALFORMED) PyErr_Format(PyExc_ValueError, "malformed Thrift data: %s", r->why);
    return NULL;
}

static PyObject *skip_value(PyObject *self, PyObject *args) {
    PyObject *obj;
    Py_ssize_t pos;
    int ttype;
    if (!PyArg_ParseTuple(args, "Oni:skip_value", &obj, &pos, &ttype)) return NULL;
    Py_buffer view;
    Reader r;
    if (start(obj, &view, pos, &r) != 0) return NULL;
    return finish(&view, &r, skip(&r, ttype, 0));
}

static PyObject *message_end(PyObject *self, PyObject *obj) {
    Py_buffer view;
    Reader r;
    if (start(obj, &view, 0, &r) != 0) return NULL;
    int rc = OK;
    if (!have(&r, 4)) rc = INCOMPLETE;
    else if ((uint32_t)get_i32(&r) >> 16 != 0x8001u) rc = malformed(&r, "not a strict binary message");
    if (rc == OK) rc = skip(&r, T_STRING, 0);                  /* the method name */
    if (rc == OK) rc = have(&r, 4) ? (r.pos += 4, OK) : INCOMPLETE; /* the sequence id */
    if (rc == OK) rc = skip(&r, T_STRUCT, 0);                  /* the result or exception */
    return finish(&view, &r, rc);
}

static PyMethodDef methods[] = {
    {"parse_results", parse_results, METH_VARARGS, "(buffer, pos, count) -> (rows, end)"},
    {"skip_value", skip_value, METH_VARARGS, "(buffer, pos, ttype) -> end | -1"},
    {"message_end", message_end, METH_O, "(buffer) -> end | -1"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_thrift2fast", "Thrift 2 scan replies straight into row tuples.", -1, methods,
};

PyMODINIT_FUNC PyInit__thrift2fast(void) { return PyModule_Create(&module); }
