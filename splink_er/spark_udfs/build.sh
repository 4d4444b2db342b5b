#!/usr/bin/env bash
# Rebuild splink_er_udfs.jar from src/ (needs a JDK and pyspark installed; the jar is committed, so users never
# run this). Java 11 bytecode, so the jar loads on every Java that Spark 4 supports.
set -euo pipefail
cd "$(dirname "$0")"
jars="$(python -c 'import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
rm -rf build && mkdir build
javac --release 11 -cp "$jars/*" -d build src/splink_er/*.java
jar cf splink_er_udfs.jar -C build .
rm -rf build
echo "built $(pwd)/splink_er_udfs.jar"
