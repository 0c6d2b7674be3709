import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.spark.sql.SparkSession;

/**
 * One Spark session in this JVM, fed SQL statements on stdin, one per line, answering
 * each with one JSON line on stdout:
 *   {"ok":true,"ms":12,"rows":[{...},...]}   or   {"ok":false,"ms":3,"error":"..."}
 * after a first {"ready":true,"ms":N} once the session is up.
 *
 * Why this and not Spark's own `spark-sql` shell: its driver class lives in
 * spark-hive-thriftserver and needs the Hive metastore jars (a hundred more MB and a
 * Derby metastore) for a few SELECTs, and its text output is not meant to be parsed.
 * A caller that keeps this process open pays Spark's start once for many queries.
 *
 * All configuration comes from spark.* Java system properties (SparkConf reads them),
 * so the runner knows nothing about catalogs or S3: infra/spark.sh sets them.
 */
public final class SqlLines {
  private SqlLines() {}

  public static void main(String[] args) throws Exception {
    // Spark logs through log4j2 to stderr, but a library that prints to System.out would
    // corrupt the protocol: answers go to the real stdout, everything else to stderr.
    PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
    System.setOut(System.err);

    long t0 = System.nanoTime();
    SparkSession spark = SparkSession.builder().appName("audit-sql-lines").getOrCreate();
    out.println("{\"ready\":true,\"ms\":" + millisSince(t0) + "}");
    out.flush();

    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      String sql = line.trim();
      if (sql.isEmpty() || sql.startsWith("--")) continue;
      if (sql.endsWith(";")) sql = sql.substring(0, sql.length() - 1);
      long t = System.nanoTime();
      StringBuilder answer = new StringBuilder();
      try {
        // toJSON keeps Spark's own rendering of each type (timestamps, decimals, uuids as text).
        List<String> rows = spark.sql(sql).toJSON().collectAsList();
        answer.append("{\"ok\":true,\"ms\":").append(millisSince(t)).append(",\"rows\":[");
        for (int i = 0; i < rows.size(); i++) {
          if (i > 0) answer.append(',');
          answer.append(rows.get(i));
        }
        answer.append("]}");
      } catch (Exception e) {
        answer.setLength(0);
        answer.append("{\"ok\":false,\"ms\":").append(millisSince(t)).append(",\"error\":");
        quote(answer, String.valueOf(e.getMessage() == null ? e.toString() : e.getMessage()));
        answer.append('}');
      }
      out.println(answer);
      out.flush();
    }
    spark.stop();
  }

  private static long millisSince(long nanos) {
    return (System.nanoTime() - nanos) / 1_000_000;
  }

  private static void quote(StringBuilder b, String s) {
    b.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"': b.append("\\\""); break;
        case '\\': b.append("\\\\"); break;
        case '\n': b.append("\\n"); break;
        case '\r': b.append("\\r"); break;
        case '\t': b.append("\\t"); break;
        default:
          if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
          else b.append(c);
      }
    }
    b.append('"');
  }
}
