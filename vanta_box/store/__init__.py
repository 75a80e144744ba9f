"""The only package that imports apsw: connections, migrations, the journal, queries."""
